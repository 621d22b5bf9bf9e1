// 元 at the edge of the national platform's format, 分 everywhere inside: exact both ways. A HIS
// sends amounts as JSON numbers or strings ("1234.5", "1234.50", 1234.5); a third decimal place,
// an exponent, a sign or anything but digits is refused, never rounded. Out, an amount is a JSON
// number whose shortest form is the decimal itself (1234.5 for 123450 fen): for every fen amount
// up to MAX_FEN (10^11 fen, far inside 2^53) that number reads back to the same fen.
import { MAX_FEN } from '#domain';

const YUAN_TEXT = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/;

/** Fen of a 元 amount as sent (number or string), or why not. */
export function fenOfYuan(value: unknown): { ok: true; fen: number } | { ok: false; problem: string } {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, problem: 'must be a finite amount in 元' };
    text = String(value); // shortest round-trip form: 12.3 → "12.3", 1e21 → "1e+21" (refused below)
  } else if (typeof value === 'string') text = value.trim();
  else return { ok: false, problem: 'must be an amount in 元 (a number or a string like "1234.56")' };
  const m = YUAN_TEXT.exec(text);
  if (m === null)
    return {
      ok: false,
      problem: /^\d+\.\d{3,}$/.test(text)
        ? 'has more than two decimal places (分 is the smallest unit; nothing is rounded)'
        : 'must be a non-negative amount in 元 with at most two decimal places',
    };
  const fen = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  if (fen > MAX_FEN) return { ok: false, problem: `must be at most ${MAX_FEN / 100} 元` };
  return { ok: true, fen };
}

/** A fen amount as the 元 number sent out (negative for a reversal's amounts). */
export function yuanOfFen(fen: number): number {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  return Number(`${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`);
}

/** A ratio in basis points as the platform's 5,4 decimal (0.7000 for 7000 bp). */
export const ratioOfBp = (bp: number): number => Number((bp / 10_000).toFixed(4));
