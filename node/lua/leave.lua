-- A local connection leaves a room (bus_presence.c).
-- KEYS: presence, rooms, seq, channel. ARGV: key, account id, instance, room,
-- the event's authentication head (empty without a cluster secret).
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[4], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[4])
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', KEYS[4], ARGV[5] .. 'L|' .. v .. '|' .. ARGV[3] .. '|' .. ARGV[1] .. '|' .. ARGV[2])
return v
