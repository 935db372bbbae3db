/**
 * The Lua scripts of the Redis backend. Each touches the keys of one session only (they share its id as a hash
 * tag, so one Redis Cluster slot), so that it runs atomically on one node.
 */

// Writes only into a record that exists: a request that outlived its session cannot bring it back.
export const STORE_TOKENS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' and (redis.call('HGET', KEYS[1], 'rt') or '') == ARGV[2] then redis.call('HSET', KEYS[1], 'rt', ARGV[3]) end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

export const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'idle', ARGV[2], 'act', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

export const CREATE = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

// An index keeps members until their absolute expiry; expired members are pruned whenever it is written.
export const INDEX_ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[1]) - tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

export const DESTROY = `
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return fields`;

export const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Holds the exchanges for the audience ARGV[1] until ARGV[2] (epoch ms) in KEYS[1], a hash kept ARGV[3] ms at least.
 * One key: a slot migration cannot split it (a script on keys of which only some exist meets TRYAGAIN).
 */
export const HOLD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`;

// HGETALL through a script: its reply is a flat list with every protocol version (see toObject).
export const READ_RECORD = `return redis.call('HGETALL', KEYS[1])`;
