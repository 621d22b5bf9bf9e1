// 元 ↔ 分 at the national format's edge: exact both ways, nothing rounded.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MAX_FEN } from '#domain';
import { fenOfYuan, ratioOfBp, yuanOfFen } from './money.js';

describe('元 ↔ 分', () => {
  it('round-trips every fen amount exactly: fen → 元 number → JSON text → fen, and through the 元 string too', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_FEN }), (fen) => {
        const sent = JSON.parse(JSON.stringify({ amount: yuanOfFen(fen) })).amount as number;
        expect(fenOfYuan(sent)).toEqual({ ok: true, fen });
        expect(fenOfYuan(String(sent))).toEqual({ ok: true, fen });
        expect(fenOfYuan(`${Math.trunc(fen / 100)}.${String(fen % 100).padStart(2, '0')}`)).toEqual({ ok: true, fen });
        expect(yuanOfFen(-fen)).toBe(-yuanOfFen(fen) || 0);
      }),
      { numRuns: 5_000 },
    );
  });

  it('takes the forms HIS clients send: numbers and strings, one or two decimals, surrounding spaces', () => {
    expect(['52000', '52000.0', '52000.00', ' 52000.00 ', 52000, 52000.0].map((v) => fenOfYuan(v))).toEqual(
      Array(6).fill({ ok: true, fen: 5_200_000 }),
    );
    expect([fenOfYuan('0.5'), fenOfYuan(0.05), fenOfYuan('0'), fenOfYuan(12.3)]).toEqual([
      { ok: true, fen: 50 },
      { ok: true, fen: 5 },
      { ok: true, fen: 0 },
      { ok: true, fen: 1_230 },
    ]);
  });

  it('refuses a third decimal place, signs, exponents, leading zeros, blanks and non-amounts, never rounding', () => {
    for (const bad of [
      '1.234',
      1.005,
      '0.001',
      '-1',
      -0.01,
      '1e3',
      1e21,
      '01.5',
      '1.',
      '.5',
      '',
      '1,000.00',
      'NaN',
      NaN,
      Infinity,
      null,
      true,
      {},
      [],
    ])
      expect([bad, fenOfYuan(bad).ok]).toEqual([bad, false]);
    expect(fenOfYuan('1.234')).toMatchObject({ problem: expect.stringContaining('more than two decimal places') });
    expect(fenOfYuan(String(MAX_FEN / 100 + 1))).toMatchObject({ ok: false });
  });

  it('sends a ratio in basis points as the platform’s 4-decimal fraction', () => {
    expect([ratioOfBp(7000), ratioOfBp(8234), ratioOfBp(0), ratioOfBp(10_000)]).toEqual([0.7, 0.8234, 0, 1]);
  });
});
