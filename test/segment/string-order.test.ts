/**
 * segment/radix.ts `stringOrder` orders strings exactly as a comparison sort with JavaScript's `<` does (UTF-16
 * code units, a prefix first), equal strings in index order: a segment's dictionary is sorted by it at every seal
 * and merge, and readers rely on that order (binary search, front coding). The reference model is
 * `Array.prototype.sort` with the comparator; a canary shows the property fails on an order that differs.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { stringOrder } from '../../src/segment/radix.js';

/** The reference: indices sorted by `<` on the strings, ties by index. */
function referenceOrder(strings: readonly string[]): number[] {
  return strings.map((_, i) => i).sort((a, b) => (strings[a]! < strings[b]! ? -1 : strings[a]! > strings[b]! ? 1 : a - b));
}

/** Strings built from pieces that share prefixes and cross every bucket: empty, Latin-1, wide, surrogates. */
const piece = fc.constantFrom('', 'a', 'b', 'ab', 'img1', 'img12', '0', '9', 'é', 'ÿ', '\u0100', '中', '\ud83d\ude00', '\ud800', '\uffff', '\u0000');
const word = fc.array(piece, { maxLength: 6 }).map((parts) => parts.join(''));
/** Lists long enough to take the radix passes (ranges over 16 strings), not only insertion sort. */
const list = fc.oneof(fc.array(word, { maxLength: 20 }), fc.array(word, { minLength: 17, maxLength: 600 }), fc.array(fc.string({ unit: 'binary' }), { maxLength: 300 }));

it('stringOrder orders as a comparison sort by < does, equal strings in index order', () => {
  fc.assert(fc.property(list, (strings) => {
    expect(Array.from(stringOrder(strings))).toEqual(referenceOrder(strings));
  }), { numRuns: 400 });
});

it('stringOrder of dictionary-shaped values (ids with a shared prefix) matches the reference', () => {
  const strings = Array.from({ length: 30_000 }, (_, i) => `img${(i * 7919) % 100_003}`);
  expect(Array.from(stringOrder(strings))).toEqual(referenceOrder(strings));
});

it('canary: an order that differs in one place fails the same property', () => {
  const swapped = (strings: readonly string[]): number[] => {
    const o = Array.from(stringOrder(strings));
    // The mutant: the last two entries exchanged whenever their strings differ.
    if (o.length >= 2 && strings[o[o.length - 1]!] !== strings[o[o.length - 2]!]) [o[o.length - 1], o[o.length - 2]] = [o[o.length - 2]!, o[o.length - 1]!];
    return o;
  };
  expect(() => fc.assert(fc.property(list, (strings) => {
    expect(swapped(strings)).toEqual(referenceOrder(strings));
  }), { numRuns: 400 })).toThrow();
});
