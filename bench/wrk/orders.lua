-- wrk script: the bench's orders (bench/bodies.ts), for cross-checking its figures with a second
-- load generator. USERS seeded users take turns (each of wrk's THREADS threads, 2 by default: as
-- many as -t, owns every THREADS-th user and keeps its coupons apart; taking turns, a user rarely
-- has two orders in flight, as in the bench's closed loop where each user waits for its answer).
-- Each order: 1-3 distinct random products of PRODUCTS (HOT=1: one product, as hot-100), 1-3
-- units each, at the seeded prices (9.99 + 10.00 per product id above 1); a coupon on
-- COUPON_SHARE of the orders (10%: the user's next reduction, 10.00 off from 100.00, when the
-- subtotal reaches it, else its next discount, x0.85 rounded half up; none once the user's
-- COUPONS seeded coupons are used) and 50 points on POINTS_SHARE (20%); totals in whole cents.
-- A run takes each user's coupons at positions COUPON_FROM..COUPON_TO only (1..COUPONS), so that a
-- warm-up and the measured run after it never offer the same coupon. Seed the same numbers first,
-- with coupons and points for long runs:
--   npm run db:reset -- --stock 10000000 --coupons 200 --points 1000000
--   VARIANT=batched COUPONS=200 COUPON_TO=100 wrk -t2 -c100 -d3s -s bench/wrk/orders.lua http://127.0.0.1:3000
--   VARIANT=batched COUPONS=200 COUPON_FROM=101 wrk -t2 -c100 -d10s -s bench/wrk/orders.lua http://127.0.0.1:3000
local variant = os.getenv("VARIANT") or "one-round-trip"
local users = tonumber(os.getenv("USERS") or "100")
local products = tonumber(os.getenv("PRODUCTS") or "10")
local hot = os.getenv("HOT") == "1"
local thread_count = tonumber(os.getenv("THREADS") or "2")
local coupons_per_user = tonumber(os.getenv("COUPONS") or "4")
local coupon_from = tonumber(os.getenv("COUPON_FROM") or "1")
local coupon_to = math.min(tonumber(os.getenv("COUPON_TO") or coupons_per_user), coupons_per_user)
local coupon_share = tonumber(os.getenv("COUPON_SHARE") or "0.1")
local points_share = tonumber(os.getenv("POINTS_SHARE") or "0.2")
local POINTS_PER_ORDER = 50
local REDUCTION_THRESHOLD, REDUCTION_AMOUNT = 10000, 1000 -- cents

statuses = {}  -- global: done() reads each thread's copy with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local my_users, next_user = {}, 1
local next_discount, next_reduction = {}, {}

function init(args)
  math.randomseed(os.time() * 1000 + id)
  for u = id, users, thread_count do
    my_users[#my_users + 1] = u
    -- The user's next coupon positions: odd ones are discounts, even ones reductions.
    next_discount[u] = coupon_from % 2 == 1 and coupon_from or coupon_from + 1
    next_reduction[u] = coupon_from % 2 == 0 and coupon_from or coupon_from + 1
  end
end

local function price_cents(pid) return 999 + 1000 * (pid - 1) end
local function money(cents) return string.format("%d.%02d", math.floor(cents / 100), cents % 100) end

-- The user's next coupon of a kind (its position steps by two), or nil once used up.
local function take(positions, u)
  local k = positions[u]
  if k > coupon_to then return nil end
  positions[u] = k + 2
  return (u - 1) * coupons_per_user + k
end

request = function()
  local u = my_users[next_user]
  next_user = next_user % #my_users + 1
  local n = hot and 1 or math.min(math.random(1, 3), products)
  local chosen, items, subtotal = {}, {}, 0
  while #items < n do
    local pid = math.random(1, products)
    if not chosen[pid] then
      chosen[pid] = true
      local count = math.random(1, 3)
      subtotal = subtotal + price_cents(pid) * count
      items[#items + 1] = string.format('{"productId":%d,"snapshotId":%d,"count":%d,"price":"%s"}',
        pid, pid, count, money(price_cents(pid)))
    end
  end
  local extra, payable = "", subtotal
  if math.random() < coupon_share then
    local reduction = subtotal >= REDUCTION_THRESHOLD and take(next_reduction, u) or nil
    local discount = reduction == nil and take(next_discount, u) or nil
    if reduction then
      extra = string.format(',"couponId":%d', reduction)
      payable = math.max(subtotal - REDUCTION_AMOUNT, 0)
    elseif discount then
      extra = string.format(',"couponId":%d', discount)
      payable = math.floor((subtotal * 85 + 50) / 100)
    end
  end
  if math.random() < points_share then
    extra = extra .. string.format(',"points":%d', POINTS_PER_ORDER)
    payable = payable - math.min(POINTS_PER_ORDER, payable)
  end
  local body = string.format('{"items":[%s]%s,"totalAmount":"%s"}', table.concat(items, ","), extra, money(payable))
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer seed-" .. u }
  return wrk.format("POST", "/orders/" .. variant, headers, body)
end

response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  if #threads ~= thread_count then
    -- Threads then share users and offer the same coupons twice: refusals that are no contention.
    io.write(string.format("warning: THREADS=%d but wrk ran %d threads (-t): set THREADS to -t\n", thread_count, #threads))
  end
  -- Per-thread status counts live in each thread's own Lua state: summed here.
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s) do all[code] = (all[code] or 0) + count end
  end
  local line = {}
  for code, count in pairs(all) do line[#line + 1] = code .. ": " .. count end
  io.write("statuses " .. table.concat(line, ", ") .. "\n")
  io.write(string.format("orders/s (201) %.1f\n", (all[201] or 0) / (summary.duration / 1e6)))
end
