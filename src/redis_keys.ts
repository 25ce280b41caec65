/**
 * Key naming for `RedisStore`: a user's keys and the escaping of user ids.
 *
 * @module
 */

/** A user's keys: the state hash and the lease. */
export type UserKeys = readonly [state: string, lease: string];

/**
 * What a user id may not hold as is in a key: `%` (the escape), braces (the
 * hash tag) and lone surrogates (UTF-8 would turn them all into U+FFFD, so
 * two ids could meet in one key).
 */
const UNSAFE =
  /[%{}]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * An id as it may stand in a key or a script argument: `%`, braces and lone
 * surrogates percent-encoded, so that two ids never meet in UTF-8.
 */
export function escapeId(id: string): string {
  return id.replace(UNSAFE, escapeChar);
}

function escapeChar(char: string): string {
  if (char === "%") return "%25";
  if (char === "{") return "%7B";
  if (char === "}") return "%7D";
  return `%u${char.charCodeAt(0).toString(16).toUpperCase()}`;
}

/** Undoes {@linkcode escapeId} (the empty id is written `%`). */
export function unescapeId(escaped: string): string {
  if (escaped === "%") return "";
  return escaped.replace(
    /%(?:25|7B|7D|u([0-9A-F]{4}))/g,
    (found, code: string | undefined) =>
      code !== undefined
        ? String.fromCharCode(parseInt(code, 16))
        : found === "%25"
        ? "%"
        : found === "%7B"
        ? "{"
        : "}",
  );
}

/** How many users' keys are kept computed. */
const CACHE_SIZE = 4_096;
/** Ids longer than this are not kept in the cache, which stays small. */
const MAX_CACHED_ID = 256;

/**
 * Names the keys of users under a prefix: `<prefix>:{<id>}` and
 * `<prefix>:{<id>}:lease`, where `<id>` is the user id with
 * `%`, braces and lone surrogates percent-encoded (the empty id written `%`),
 * so that no id reaches another user's keys and all of a user's keys share
 * one hash tag (one Cluster slot).
 */
export class KeyNamer {
  readonly #prefix: string;
  readonly #cache = new Map<string, UserKeys>();

  /**
   * @param prefix The prefix of every key; must not hold a brace.
   * @throws {TypeError} When the prefix holds a brace.
   */
  constructor(prefix: string) {
    if (/[{}]/.test(prefix)) {
      throw new TypeError(
        `Cannot create RedisStore: prefix "${prefix}" contains a brace`,
      );
    }
    this.#prefix = prefix;
  }

  /**
   * The key of the index of timers, `<prefix>:{}:timers`: its empty hash tag
   * is one no user's key has (the empty id is written `%`).
   */
  timers(): string {
    return `${this.#prefix}:{}:timers`;
  }

  /**
   * The `SCAN` pattern of the users' state keys, `<prefix>:{*}`, with the
   * prefix's glob characters escaped: neither the leases, nor the index of
   * timers (`<prefix>:{}:timers`), nor foreign values moved aside end in `}`.
   */
  pattern(): string {
    return `${this.#prefix.replace(/[*?[\]\\]/g, "\\$&")}:{*}`;
  }

  /**
   * The user whose state key `key` is, or `undefined` when it is not one
   * of this prefix's state keys: only a key that `keys` gives for that user
   * (another app's key under the prefix, `{%u0041}` or `{%zz}`, is none).
   */
  userOf(key: string): string | undefined {
    const head = `${this.#prefix}:{`;
    if (!key.startsWith(head) || !key.endsWith("}")) return undefined;
    const inner = key.slice(head.length, -1);
    if (inner === "" || /[{}]/.test(inner)) return undefined;
    const userId = unescapeId(inner);
    return (userId === "" ? "%" : escapeId(userId)) === inner
      ? userId
      : undefined;
  }

  /** The keys of a user, from a small cache: the hot path of every call. */
  keys(userId: string): UserKeys {
    let keys = this.#cache.get(userId);
    if (keys === undefined) {
      const id = userId === "" ? "%" : escapeId(userId);
      const state = `${this.#prefix}:{${id}}`;
      keys = [state, `${state}:lease`];
      if (userId.length <= MAX_CACHED_ID) {
        if (this.#cache.size >= CACHE_SIZE) this.#cache.clear();
        this.#cache.set(userId, keys);
      }
    }
    return keys;
  }
}

/** CRC16-CCITT (XModem), the checksum of Redis Cluster's key slots. */
const CRC16 = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    table[byte] = crc & 0xffff;
  }
  return table;
})();
const UTF8 = new TextEncoder();

/**
 * The Redis Cluster hash slot of a key (0 to 16383), as `CLUSTER KEYSLOT`
 * computes it: CRC16 of the key's UTF-8 bytes, or of its hash tag (what
 * lies between the first `{` and the next `}`, when that is not empty),
 * modulo 16384.
 */
export function keySlot(key: string): number {
  const bytes = UTF8.encode(key);
  let from = 0;
  let to = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      from = open + 1;
      to = close;
    }
  }
  let crc = 0;
  for (let i = from; i < to; i++) {
    crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  }
  return crc & 0x3fff;
}
