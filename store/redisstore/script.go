package redisstore

import "github.com/redis/go-redis/v9"

// appendScript appends a batch of events atomically: it checks the log's
// epoch, gives the events the next positions n+1, n+2, ... under one
// millisecond (the caller's clock, never less than the last entry's), adds
// them with explicit entry ids ms-n, indexes their custom ids, trims the
// stream by count (MAXLEN ~, only once the length it knows from n and f
// exceeds it), by an average-size estimate of bytes and by age (MINID ~),
// drops the index entries of trimmed events, and records the new state in
// the meta hash:
//
//	epoch  the log's epoch (created by Open, checked here)
//	n      the last position
//	ms     the last entry's milliseconds
//	f      the first retained position (n+1 when empty): positions are
//	       contiguous, so XTRIM's count of deleted entries moves it exactly
//	avg    moving average of store.EventSize, for byte retention
//	c      "1" while trimmed index entries remain to be removed (the
//	       script removes at most 512 per call)
//	kn     n as of the end of the last call of this script: an append by
//	       a version of the store that keeps no channels leaves it behind
//	       n (see kx)
//
// Then it keeps the batch's events of channels ([store.Keeper]), each in
// the stream of its channel, with the same entry id ms-n and fields m and
// d, and p: the position of the channel's previous event (the chain; see
// keep.go). The stream is trimmed to the newest per entries at each XADD,
// and expires ttl ms after its last write. Two index keys remember each
// channel written within KeepFor: the hash last (channel -> position of
// its last event) and the sorted set when (channel by the milliseconds of
// its first event since a tick, below). Both also hold the member "-",
// the index's mark ("+inf" in when, so that no sweep takes it): last
// without it was lost (or written by the version before the mark, which
// reset the index itself whenever it was lost: EXISTS on both keys tells),
// and the HMGET of the channels' positions reads it at no extra command;
// when without it, at a tick, was lost and written again since.
//
// What does not need doing at every event is done at a tick: the first
// call at or after ks, so at most once per period of log time (a second,
// or a quarter of KeepFor if that is shorter), or at the next call while
// a sweep finds a full page. A tick forgets up to 64 channels whose when
// is older than KeepFor and a period (their last event is then older than
// KeepFor: see below), refreshes the expiry of the index keys (and a call
// that adds members to when between ticks that of when, which it may have
// written again), and sets kt to its first position. A channel's age trim
// (MINID, the store's clock less KeepFor) and its when are written at its
// first event since the last tick (its last position below kt, or unknown
// to the index), so its last event is less than a period of log time after
// its when. Its expiry is refreshed at every call that writes to it. The
// meta hash holds the tick's state and the watermarks a chain starts from:
//
//	ks  the milliseconds at or after which the next call ticks
//	kt  the first position of the last tick's batch
//	kw  the newest position of an event of a channel the index forgot (idle,
//	    or the index expired or was evicted): a channel the index does not
//	    know starts its chain at kw
//	kl  the newest position of a kept event (kw becomes kl when the index
//	    is lost)
//	kx  the newest position of a channel's event that may not be kept: one
//	    appended by a store with keeping off, or by an older version (kn
//	    behind n). Every chain starts at kx or later, and Kept refuses a
//	    channel whose newest kept event is older than kx
//
// It returns {ms, first position of the batch}. Lua numbers are doubles:
// positions and milliseconds stay far below 2^53. Nothing after the first
// XADD may fail: Redis does not roll a script back, so a channel's XADD
// that fails (it cannot, short of a damaged key) drops the key and starts
// the channel again.
//
// KEYS: log, meta, ids (custom-id index by id), idq (the same members by
// position), and with events of channels to keep: last, when, then the
// channels' streams (named by the hex SHA-256 of the channel, the last 64
// characters of the key). ARGV: epoch, now ms, max len (0: none), min ms
// (0: none), max bytes (0: none), event count, then for each event: custom
// id ("" for none), size, m, d; then the keeping: np, the number of
// (event, channel) pairs to keep. np = 0: no event of a channel; np < 0:
// the store keeps nothing, and -np is the index in the batch (from 1) of
// its last event of a channel; np > 0: cutoff ms (events older are
// trimmed), ttl ms, per (events kept per channel), then np pairs of the
// event's index in the batch and its channel's index in KEYS, in event
// order.
var appendScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[2], 'epoch', 'n', 'ms', 'f', 'avg', 'c', 'kn', 'kx', 'kw', 'kl', 'ks', 'kt')
if st[1] ~= ARGV[1] then
  return redis.error_reply('SLUICEEPOCH the log under this prefix was deleted or replaced')
end
local n = tonumber(st[2]) or 0
local last = tonumber(st[3]) or 0
local f = tonumber(st[4]) or 1
local avg = tonumber(st[5]) or 0
local ms = tonumber(ARGV[2])
if ms < last then ms = last end
local mss = string.format('%d', ms)
local first = n + 1
local n0 = n
local count = tonumber(ARGV[6])
local maxbytes = tonumber(ARGV[5])
local i = 7
for _ = 1, count do
  n = n + 1
  redis.call('XADD', KEYS[1], mss .. '-' .. string.format('%d', n), 'm', ARGV[i + 2], 'd', ARGV[i + 3])
  if ARGV[i] ~= '' then
    local member = ARGV[i] .. '\0' .. string.format('%016x', n) .. mss
    redis.call('ZADD', KEYS[3], 0, member)
    redis.call('ZADD', KEYS[4], n, member)
  end
  if maxbytes > 0 then
    local size = tonumber(ARGV[i + 1])
    if avg == 0 then avg = size else avg = avg + (size - avg) / 64 end
  end
  i = i + 4
end
local maxlen = tonumber(ARGV[3])
if maxbytes > 0 then
  local bylen = math.floor(maxbytes / math.max(avg, 1))
  if bylen < 1 then bylen = 1 end
  if maxlen <= 0 or bylen < maxlen then maxlen = bylen end
end
local trimmed = 0
if maxlen > 0 and n - f + 1 > maxlen then
  trimmed = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen)
end
local minms = tonumber(ARGV[4])
if minms > 0 then
  trimmed = trimmed + redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', minms))
end
f = f + trimmed
local c = st[6]
if trimmed > 0 or c == '1' then
  local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%d', f), 'LIMIT', 0, 512)
  if #old > 0 then
    redis.call('ZREM', KEYS[3], unpack(old))
    redis.call('ZREM', KEYS[4], unpack(old))
  end
  if #old == 512 then c = '1' else c = '0' end
end
local ns = string.format('%d', n)
local set = {'n', ns, 'ms', mss, 'f', string.format('%d', f), 'avg', tostring(avg), 'c', c or '0', 'kn', ns}
local kx = nil
if (tonumber(st[7]) or 0) ~= n0 then
  kx = n0 -- appended by a store that kept no channels
end
local np = tonumber(ARGV[i])
if np < 0 then
  kx = first - 1 - np
elseif np > 0 then
  local cutoff = tonumber(ARGV[i + 1])
  local ttl = ARGV[i + 2]
  local per = ARGV[i + 3]
  local x = tonumber(st[8]) or 0
  if kx ~= nil and kx > x then x = kx end
  local kw = tonumber(st[9]) or 0
  local kl = tonumber(st[10]) or 0
  local kt = tonumber(st[12]) or 0
  local tp = math.max(1, math.min(1000, math.floor(tonumber(ttl) / 4)))
  -- The channels' last positions (nil: the index does not know the
  -- channel), by KEYS index less 6, read with the index's mark.
  local nc = #KEYS - 6
  local hs, last = {}, {}
  for k = 1, nc do hs[k] = string.sub(KEYS[6 + k], -64) end
  local v = redis.call('HMGET', KEYS[5], '-', unpack(hs, 1, math.min(nc, 255)))
  local fresh = not v[1]
  local tick = fresh or ms >= (tonumber(st[11]) or 0)
  local lost = false
  if fresh then
    lost = redis.call('EXISTS', KEYS[5], KEYS[6]) < 2
  elseif tick then
    lost = not redis.call('ZSCORE', KEYS[6], '-')
  end
  local full = false
  if lost then
    if kl > kw then kw = kl end
    redis.call('DEL', KEYS[5], KEYS[6])
  else
    for k = 2, #v do last[k - 1] = tonumber(v[k]) end
    for c = 256, nc, 256 do
      local w = redis.call('HMGET', KEYS[5], unpack(hs, c, math.min(c + 255, nc)))
      for k = 1, #w do last[c + k - 1] = tonumber(w[k]) end
    end
    if tick then
      local idle = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. string.format('%d', cutoff - tp), 'LIMIT', 0, 64)
      if #idle > 0 then
        local lp = redis.call('HMGET', KEYS[5], unpack(idle))
        for k = 1, #idle do
          local p = tonumber(lp[k]) or kl
          if p > kw then kw = p end
        end
        redis.call('HDEL', KEYS[5], unpack(idle))
        redis.call('ZREM', KEYS[6], unpack(idle))
      end
      full = #idle == 64
    end
  end
  -- A channel is touched (age trim, index time) at its first event since
  -- the last tick, a channel the index does not know at once.
  local touch = {}
  for k = 1, nc do touch[k] = tick or last[k] == nil or last[k] < kt end
  local pos = 0
  local j = i + 4
  for _ = 1, np do
    local ev = tonumber(ARGV[j])
    local k = tonumber(ARGV[j + 1]) - 6
    j = j + 2
    pos = first + ev - 1
    local prev = last[k] or kw
    if prev < x then prev = x end
    local a = 7 + (ev - 1) * 4
    local id = mss .. '-' .. string.format('%d', pos)
    local r = redis.pcall('XADD', KEYS[6 + k], 'MAXLEN', per, id, 'p', string.format('%d', prev), 'm', ARGV[a + 2], 'd', ARGV[a + 3])
    if type(r) == 'table' and r.err then
      redis.call('DEL', KEYS[6 + k])
      redis.call('XADD', KEYS[6 + k], id, 'p', string.format('%d', pos - 1), 'm', ARGV[a + 2], 'd', ARGV[a + 3])
    end
    last[k] = pos
  end
  local mark = fresh or lost
  local minid = string.format('%d', cutoff)
  local added = 0
  for c = 1, nc, 128 do
    local hset, zadd = {}, {}
    if mark and c == 1 then
      hset[1], hset[2], zadd[1], zadd[2] = '-', '1', '+inf', '-'
    end
    for k = c, math.min(c + 127, nc) do
      if touch[k] then
        redis.call('XTRIM', KEYS[6 + k], 'MINID', minid)
        zadd[#zadd + 1] = mss
        zadd[#zadd + 1] = hs[k]
      end
      redis.call('PEXPIRE', KEYS[6 + k], ttl)
      hset[#hset + 1] = hs[k]
      hset[#hset + 1] = string.format('%d', last[k])
    end
    redis.call('HSET', KEYS[5], unpack(hset))
    if #zadd > 0 then added = added + redis.call('ZADD', KEYS[6], unpack(zadd)) end
  end
  if tick then
    redis.call('PEXPIRE', KEYS[5], ttl)
    redis.call('PEXPIRE', KEYS[6], ttl)
    set[#set + 1] = 'ks'
    if full then set[#set + 1] = mss else set[#set + 1] = string.format('%d', ms + tp) end
    set[#set + 1] = 'kt'
    set[#set + 1] = string.format('%d', first)
  elseif added > 0 then
    redis.call('PEXPIRE', KEYS[6], ttl) -- when may have been lost and written again
  end
  if pos > kl then kl = pos end
  set[#set + 1] = 'kw'
  set[#set + 1] = string.format('%d', kw)
  set[#set + 1] = 'kl'
  set[#set + 1] = string.format('%d', kl)
end
if kx ~= nil then
  set[#set + 1] = 'kx'
  set[#set + 1] = string.format('%d', kx)
end
redis.call('HSET', KEYS[2], unpack(set))
return {ms, first}
`)

// epochErrPrefix starts the error appendScript returns when the epoch in
// Redis is not the one the store holds.
const epochErrPrefix = "SLUICEEPOCH"
