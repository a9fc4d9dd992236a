-- A room's presence, loaded when it gets its first local member (bus_channel.c).
-- KEYS: presence, seq, nodes. Returns {version, entries, registered
-- instances}: all of them, so that a node can tell a connection that left
-- while it was not listening from one whose node is not registered (dead, or
-- reconnecting after Redis lost its data).
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1]),
        redis.call('SMEMBERS', KEYS[3])}
