-- wrk script: the bench's mixed orders, for cross-checking its figures with a second load generator.
-- Each request is from a random one of USERS seeded users (session seed-N), for 1-3 distinct random
-- products of PRODUCTS (HOT=1: one product), 1-3 units each, at the seeded prices (9.99 + 10.00 per
-- product id above 1), total worked out in cents; no coupon or points. Seed ample stock first:
--   npm run db:reset -- --stock 10000000
--   VARIANT=batched wrk -t2 -c100 -d15s -s bench/wrk/orders.lua http://127.0.0.1:3000
local variant = os.getenv("VARIANT") or "one-round-trip"
local users = tonumber(os.getenv("USERS") or "100")
local products = tonumber(os.getenv("PRODUCTS") or "10")
local hot = os.getenv("HOT") == "1"
statuses = {}  -- global: done() reads each thread's copy with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
end

local function price_cents(id) return 999 + 1000 * (id - 1) end

request = function()
  local n = hot and 1 or math.random(1, 3)
  local chosen, items, total = {}, {}, 0
  while #items < n do
    local id = math.random(1, products)
    if not chosen[id] then
      chosen[id] = true
      local count = math.random(1, 3)
      total = total + price_cents(id) * count
      items[#items + 1] = string.format('{"productId":%d,"snapshotId":%d,"count":%d,"price":"%d.%02d"}',
        id, id, count, math.floor(price_cents(id) / 100), price_cents(id) % 100)
    end
  end
  local body = string.format('{"items":[%s],"totalAmount":"%d.%02d"}', table.concat(items, ","), math.floor(total / 100), total % 100)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer seed-" .. math.random(1, users) }
  return wrk.format("POST", "/orders/" .. variant, headers, body)
end

response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
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
