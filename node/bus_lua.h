/* The Lua scripts of the Redis bus. Each runs atomically in Redis, so that a
 * presence change, its version and its event are one step: no reader ever
 * sees one without the other. Layout (P = SIGNAL_REDIS_PREFIX):
 *   P presence:<room>   hash: connection key -> {"account":..,"joinedAt":..}
 *   P rooms:<instance>  hash: room -> this instance's entries there
 *   P node:<node id>    the live instance's boot id, with a TTL
 *   P nodes             set of the registered instances: those not (yet)
 *                       found dead, who may have presence
 *   P suspects          hash: instance -> when a sweep first missed its
 *                       heartbeat (Redis TIME, ms)
 *   P seq               version of the last presence change, cluster-wide
 *   P room:<room>       the room's channel
 * A connection key is "<node id>:<boot>:<seq>", an instance "<node id>:<boot>". */
#ifndef SIGNAL_BUS_LUA_H
#define SIGNAL_BUS_LUA_H

/* KEYS: presence, rooms, seq, channel, nodes. ARGV: key, value, instance,
 * room. Registers the instance too, so that a sweep always finds what it
 * wrote, even when it re-announces after having been swept. */
static const char lua_join[] =
    "redis.call('SADD', KEYS[5], ARGV[3])\n"
    "if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then\n"
    "  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)\n"
    "end\n"
    "local v = redis.call('INCR', KEYS[3])\n"
    "redis.call('PUBLISH', KEYS[4], 'J|' .. v .. '|' .. ARGV[3] .. '|' .. ARGV[1] .. '|' .. "
    "ARGV[2])\n"
    "return v\n";

/* KEYS: presence, rooms, seq, channel. ARGV: key, account id, instance, room. */
static const char lua_leave[] =
    "if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "if redis.call('HINCRBY', KEYS[2], ARGV[4], -1) <= 0 then\n"
    "  redis.call('HDEL', KEYS[2], ARGV[4])\n"
    "end\n"
    "local v = redis.call('INCR', KEYS[3])\n"
    "redis.call('PUBLISH', KEYS[4], 'L|' .. v .. '|' .. ARGV[3] .. '|' .. ARGV[1] .. '|' .. "
    "ARGV[2])\n"
    "return v\n";

/* KEYS: presence, seq, nodes. Returns {version, entries, registered
 * instances}: all of them, so that a node can tell a connection that left
 * while it was not listening from one whose node is not registered (dead,
 * or reconnecting after Redis lost its data). */
static const char lua_load[] =
    "return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1]),\n"
    "        redis.call('SMEMBERS', KEYS[3])}\n";

/* KEYS: nodes, seq, suspects. ARGV: prefix, confirm ms. An instance whose
 * heartbeat holds a newer boot id is forgotten at once: its presence removed
 * with a leave event each. One whose heartbeat is gone becomes a suspect,
 * and is forgotten if still gone confirm ms later: the wait spares the live
 * when Redis itself stalled and let every heartbeat expire. Returns the
 * registered instances. */
static const char lua_sweep[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local alive = {}\n"
    "for _, inst in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local node, boot = string.match(inst, '^(.*):([^:]*)$')\n"
    "  local since = tonumber(redis.call('HGET', KEYS[3], inst))\n"
    "  local beat = node and redis.call('GET', ARGV[1] .. 'node:' .. node)\n"
    "  local dead = false\n"
    "  if beat == boot then\n"
    "    if since then redis.call('HDEL', KEYS[3], inst) end\n"
    "  elseif beat then\n"
    "    dead = true\n"
    "  elseif not since then\n"
    "    redis.call('HSET', KEYS[3], inst, now)\n"
    "  else\n"
    "    dead = now - since >= tonumber(ARGV[2])\n"
    "  end\n"
    "  if not dead then\n"
    "    alive[#alive + 1] = inst\n"
    "  else\n"
    "    local rooms_key = ARGV[1] .. 'rooms:' .. inst\n"
    "    local mine = inst .. ':'\n"
    "    for _, room in ipairs(redis.call('HKEYS', rooms_key)) do\n"
    "      local pkey = ARGV[1] .. 'presence:' .. room\n"
    "      local entries = redis.call('HGETALL', pkey)\n"
    "      for i = 1, #entries, 2 do\n"
    "        local key = entries[i]\n"
    "        if string.sub(key, 1, #mine) == mine then\n"
    "          redis.call('HDEL', pkey, key)\n"
    "          local ok, value = pcall(cjson.decode, entries[i + 1])\n"
    "          local id = ''\n"
    "          if ok and type(value) == 'table' and type(value.account) == 'table'\n"
    "             and type(value.account.id) == 'string' then id = value.account.id end\n"
    "          local v = redis.call('INCR', KEYS[2])\n"
    "          redis.call('PUBLISH', ARGV[1] .. 'room:' .. room,\n"
    "                     'L|' .. v .. '|sweep|' .. key .. '|' .. id)\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', rooms_key)\n"
    "    redis.call('SREM', KEYS[1], inst)\n"
    "    redis.call('HDEL', KEYS[3], inst)\n"
    "  end\n"
    "end\n"
    "return alive\n";

/* KEYS: heartbeat. ARGV: boot id. The next sweep, on any node, forgets the
 * instance and whatever presence it may have left. */
static const char lua_goodbye[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

#endif
