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
//
// It returns {ms, first position of the batch}. Lua numbers are doubles:
// positions and milliseconds stay far below 2^53.
//
// KEYS: log, meta, ids (custom-id index by id), idq (the same members by
// position). ARGV: epoch, now ms, max len (0: none), min ms (0: none), max
// bytes (0: none), event count, then for each event: custom id ("" for
// none), size, m, d.
var appendScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[2], 'epoch', 'n', 'ms', 'f', 'avg', 'c')
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
redis.call('HSET', KEYS[2], 'n', string.format('%d', n), 'ms', mss, 'f', string.format('%d', f), 'avg', tostring(avg), 'c', c or '0')
return {ms, first}
`)

// epochErrPrefix starts the error appendScript returns when the epoch in
// Redis is not the one the store holds.
const epochErrPrefix = "SLUICEEPOCH"
