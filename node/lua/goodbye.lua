-- A node stops (bus_beat.c). KEYS: heartbeat. ARGV: boot id. The next sweep,
-- on any node, forgets the instance and whatever presence it may have left.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
