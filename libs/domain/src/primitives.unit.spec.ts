// Units, dates and canonical JSON (spec §2): the building blocks every other rule relies on.
import { describe, it, expect } from '@jest/globals';
import { MAX_FEN, canonicalJson, dayBefore, isBp, isCalendarDate, isFen, isId } from './primitives.js';

describe('isCalendarDate: dates are YYYY-MM-DD calendar dates that exist', () => {
  it.each([
    ['2012-02-29', 'Feb 29 in a leap year divisible by 4'],
    ['2000-02-29', 'Feb 29 in 2000 (divisible by 400, leap)'],
    ['2400-02-29', 'Feb 29 in 2400 (divisible by 400, leap)'],
    ['2013-02-28', 'Feb 28 in a common year'],
    ['2012-01-31', 'Jan 31'],
    ['2012-04-30', 'Apr 30'],
    ['2012-12-31', 'Dec 31'],
    ['2012-01-01', 'Jan 1'],
  ])('given %s (%s), when checked, then it is a calendar date', (date) => {
    expect(isCalendarDate(date)).toBe(true);
  });

  it.each([
    ['2012-02-30', 'Feb 30 never exists'],
    ['2013-02-29', 'Feb 29 in a common year'],
    ['1900-02-29', '1900 is divisible by 100 but not 400: not a leap year'],
    ['2100-02-29', '2100 is not a leap year'],
    ['2012-04-31', 'April has 30 days'],
    ['2012-06-31', 'June has 30 days'],
    ['2012-09-31', 'September has 30 days'],
    ['2012-11-31', 'November has 30 days'],
    ['2012-13-01', 'month 13'],
    ['2012-00-10', 'month 0'],
    ['2012-01-00', 'day 0'],
    ['2012-01-32', 'day 32'],
    ['2012-1-01', 'one-digit month'],
    ['2012-01-1', 'one-digit day'],
    ['12-01-01', 'two-digit year'],
    ['2012/01/01', 'slashes'],
    ['20120101', 'no separators'],
    ['2012-01-01T00:00:00Z', 'a timestamp, not a date'],
    [' 2012-01-01', 'leading space'],
    ['2012-01-01 ', 'trailing space'],
    ['', 'empty'],
  ])('given %s (%s), when checked, then it is rejected', (date) => {
    expect(isCalendarDate(date)).toBe(false);
  });

  it('given values that are not strings, when checked, then they are rejected', () => {
    for (const v of [null, undefined, 20120101, new Date('2012-01-01'), ['2012-01-01'], { date: '2012-01-01' }]) {
      expect(isCalendarDate(v)).toBe(false);
    }
  });
});

describe('dayBefore: closing an interval on the day before a revocation', () => {
  it.each([
    ['2012-05-17', '2012-05-16', 'inside a month'],
    ['2012-05-01', '2012-04-30', 'into a 30-day month'],
    ['2012-08-01', '2012-07-31', 'into a 31-day month'],
    ['2012-01-01', '2011-12-31', 'across a year boundary'],
    ['2012-03-01', '2012-02-29', 'March 1 of a leap year'],
    ['2013-03-01', '2013-02-28', 'March 1 of a common year'],
    ['2000-03-01', '2000-02-29', 'March 1 of 2000 (leap)'],
    ['1900-03-01', '1900-02-28', 'March 1 of 1900 (not leap)'],
    ['2012-02-29', '2012-02-28', 'the leap day itself'],
    ['0100-01-01', '0099-12-31', 'keeps four-digit years'],
  ])('given %s, when taking the day before, then it is %s (%s)', (date, expected) => {
    expect(dayBefore(date)).toBe(expected);
    expect(isCalendarDate(dayBefore(date))).toBe(true);
  });

  it('given every day of 2011 to 2013, when taking the day before, then it agrees with the UTC calendar', () => {
    const oneDayMs = 86_400_000;
    for (let t = Date.UTC(2011, 0, 2); t <= Date.UTC(2013, 11, 31); t += oneDayMs) {
      const date = new Date(t).toISOString().slice(0, 10);
      expect(dayBefore(date)).toBe(new Date(t - oneDayMs).toISOString().slice(0, 10));
    }
  });
});

describe('canonicalJson: "identical" documents regardless of key order', () => {
  it('given the same object with keys in a different order at every level, when canonicalised, then the texts are equal', () => {
    const a = { b: 1, a: { y: [1, { q: 2, p: 3 }], x: 'x' }, c: null };
    const b = { c: null, a: { x: 'x', y: [1, { p: 3, q: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"x":"x","y":[1,{"p":3,"q":2}]},"b":1,"c":null}');
  });

  it('given arrays with the same elements in another order, when canonicalised, then the texts differ (order is significant)', () => {
    expect(canonicalJson({ diagnosisCodes: ['C50', 'N18'] })).not.toBe(canonicalJson({ diagnosisCodes: ['N18', 'C50'] }));
  });

  it('given different values, when canonicalised, then the texts differ', () => {
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: 2 }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
    expect(canonicalJson({ a: null })).not.toBe(canonicalJson({}));
  });

  it('given an absent key and an undefined key, when canonicalised, then they are the same (as in JSON)', () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it('given scalars, when canonicalised, then they are plain JSON', () => {
    expect(canonicalJson('x"y')).toBe('"x\\"y"');
    expect(canonicalJson(12)).toBe('12');
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson([])).toBe('[]');
  });

  it('given any canonical text, when parsed back, then it is the same value', () => {
    const v = { z: [3, 2, 1], a: { c: 'é中', b: false } };
    expect(JSON.parse(canonicalJson(v))).toEqual(v);
  });
});

describe('isFen: money is an integer number of fen from 0 to 100,000,000,000', () => {
  it.each([[0], [1], [MAX_FEN], [100_000_000_000], [99_999_999_999]])('given %p, then it is accepted', (v) => {
    expect(isFen(v)).toBe(true);
  });

  it.each([[-1], [100_000_000_001], [1.5], [0.1], ['100'], [NaN], [Infinity], [-Infinity], [null], [undefined], [true], [[100]], [10n]])(
    'given %p, then it is rejected',
    (v) => {
      expect(isFen(v)).toBe(false);
    },
  );
});

describe('isBp and isId', () => {
  it('given ratios, then only integers 0 … 10000 are basis points', () => {
    expect([0, 1, 5000, 10000].every(isBp)).toBe(true);
    expect([-1, 10001, 1.5, '5000', NaN].some(isBp)).toBe(false);
  });

  it('given identifiers, then only ^[A-Za-z0-9._:-]{1,64}$ is accepted', () => {
    expect(['a', 'A-b_c.d:e', '360827', 'x'.repeat(64)].every(isId)).toBe(true);
    expect(['', 'x'.repeat(65), 'a b', 'a/b', '低保', 'a\n', 12].some(isId)).toBe(false);
  });
});
