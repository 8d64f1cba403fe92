import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { commitLine, gitState } from '../bench/machine.ts';

// A report names the commit its figures were measured on; figures from a checkout whose code
// differs from that commit must say so (a changed SQL function changes every figure of its variant).

test('the checkout: its commit, and the tracked code that differs from it (docs and results aside)', async () => {
  const repo = await mkdtemp(join(tmpdir(), 'bench-git-'));
  try {
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: repo, encoding: 'utf8' }).trim();
    // Not a repository (a copy without .git): no commit to name. Needs a temporary directory
    // outside any repository, as the system's is.
    assert.deepEqual(gitState(repo), { sha: 'unknown', uncommitted: [] });
    git('init', '-q');
    await mkdir(join(repo, 'sql'));
    await mkdir(join(repo, 'bench/results'), { recursive: true });
    await writeFile(join(repo, 'sql/f.sql'), 'select 1;\n');
    await writeFile(join(repo, 'README.md'), '# r\n');
    await writeFile(join(repo, 'bench/results/old.md'), 'figures\n');
    git('add', '.');
    git('commit', '-q', '-m', 'first');
    const sha = git('rev-parse', 'HEAD');

    assert.deepEqual(gitState(repo), { sha, uncommitted: [] });
    // Docs, results and new untracked files change no figure.
    await writeFile(join(repo, 'README.md'), '# r, edited\n');
    await writeFile(join(repo, 'bench/results/old.md'), 'figures, rewritten\n');
    await writeFile(join(repo, 'bench/results/new.md'), 'new figures\n');
    assert.deepEqual(gitState(repo), { sha, uncommitted: [] });
    await writeFile(join(repo, 'sql/f.sql'), 'select 2;\n');
    assert.deepEqual(gitState(repo), { sha, uncommitted: ['sql/f.sql'] });
    // Asked from a subdirectory: still the whole checkout, results still aside.
    assert.deepEqual(gitState(join(repo, 'bench/results')), { sha, uncommitted: ['sql/f.sql'] });
    assert.equal(commitLine({ gitSha: sha, gitUncommitted: ['sql/f.sql'] }), `git ${sha.slice(0, 10)} with uncommitted changes to sql/f.sql`);
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
});

test('the report line: the commit alone when nothing differs; at most three files named', () => {
  const sha = '5620b29404aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  assert.equal(commitLine({ gitSha: sha, gitUncommitted: [] }), 'git 5620b29404');
  // Results written before this field existed have none.
  assert.equal(commitLine({ gitSha: sha }), 'git 5620b29404');
  assert.equal(commitLine({ gitSha: sha, gitUncommitted: null }), 'git 5620b29404 (uncommitted changes unknown)');
  assert.equal(commitLine({ gitSha: sha, gitUncommitted: ['a', 'b', 'c', 'd', 'e'] }),
    'git 5620b29404 with uncommitted changes to a, b, c and 2 more');
});
