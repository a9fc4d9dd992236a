-- A local connection joins a room (bus_presence.c).
-- KEYS: presence, rooms, seq, channel, nodes. ARGV: key, value, instance, room,
-- the event's authentication head (empty without a cluster secret).
-- Registers the instance too, so that a sweep always finds what it wrote,
-- even when it re-announces after having been swept.
redis.call('SADD', KEYS[5], ARGV[3])
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', KEYS[4], ARGV[5] .. 'J|' .. v .. '|' .. ARGV[3] .. '|' .. ARGV[1] .. '|' .. ARGV[2])
return v
