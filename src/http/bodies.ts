/**
 * http/bodies.ts — decoding request bodies, one implementation for the main thread and the decode workers.
 * Invariant: bytes that are not valid UTF-8 JSON or MessagePack fail with BODY_MALFORMED, wherever decoded.
 */
import { unpack } from 'msgpackr';
import { TallyError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function utf8Text(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new TallyError('BODY_MALFORMED', 'the body is not valid UTF-8');
  }
}

export function decodeBody(body: Uint8Array, type: 'json' | 'msgpack'): unknown {
  if (type === 'msgpack') {
    try {
      return unpack(body);
    } catch (e) {
      throw new TallyError('BODY_MALFORMED', `the body is not valid MessagePack: ${(e as Error).message}`);
    }
  }
  const text = utf8Text(body);
  if (text.trim().length === 0) throw new TallyError('BODY_MALFORMED', 'the JSON body is empty');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TallyError('BODY_MALFORMED', `the body is not valid JSON: ${(e as Error).message}`);
  }
}
