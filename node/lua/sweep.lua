-- The sweep of dead nodes, run by every node at each heartbeat (bus_beat.c).
-- KEYS: nodes, seq, suspects, shard lists. ARGV: prefix, confirm ms, publish
-- ('1' or '0'). An instance whose heartbeat holds a newer boot id is forgotten at
-- once: its presence removed with a leave event each. One whose heartbeat is
-- gone becomes a suspect, and is forgotten if still gone confirm ms later:
-- the wait spares the live when Redis itself stalled and let every heartbeat
-- expire. Returns the registered instances, the leaves it did not publish
-- (room, key, account id, version each): with a cluster secret the node
-- publishes them, signed, since a script cannot sign; and the shard list of
-- each instance whose heartbeat is there (instance, list each), for the node
-- to compare with its own.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local alive, left, lists = {}, {}, {}
for _, inst in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local node, boot = string.match(inst, '^(.*):([^:]*)$')
  local since = tonumber(redis.call('HGET', KEYS[3], inst))
  local beat = node and redis.call('GET', ARGV[1] .. 'node:' .. node)
  local dead = false
  if beat == boot then
    if since then redis.call('HDEL', KEYS[3], inst) end
    lists[#lists + 1] = inst
    lists[#lists + 1] = redis.call('HGET', KEYS[4], inst) or ''
  elseif beat then
    dead = true
  elseif not since then
    redis.call('HSET', KEYS[3], inst, now)
  else
    dead = now - since >= tonumber(ARGV[2])
  end
  if not dead then
    alive[#alive + 1] = inst
  else
    local rooms_key = ARGV[1] .. 'rooms:' .. inst
    local mine = inst .. ':'
    for _, room in ipairs(redis.call('HKEYS', rooms_key)) do
      local pkey = ARGV[1] .. 'presence:' .. room
      local entries = redis.call('HGETALL', pkey)
      for i = 1, #entries, 2 do
        local key = entries[i]
        if string.sub(key, 1, #mine) == mine then
          redis.call('HDEL', pkey, key)
          local ok, value = pcall(cjson.decode, entries[i + 1])
          local id = ''
          if ok and type(value) == 'table' and type(value.account) == 'table'
             and type(value.account.id) == 'string' then id = value.account.id end
          local v = redis.call('INCR', KEYS[2])
          if ARGV[3] == '1' then
            redis.call('PUBLISH', ARGV[1] .. 'room:' .. room,
                       'L|' .. v .. '|sweep|' .. key .. '|' .. id)
          else
            for _, x in ipairs({room, key, id, v}) do left[#left + 1] = x end
          end
        end
      end
    end
    redis.call('DEL', rooms_key)
    redis.call('SREM', KEYS[1], inst)
    redis.call('HDEL', KEYS[3], inst)
    redis.call('HDEL', KEYS[4], inst)
  end
end
return {alive, left, lists}
