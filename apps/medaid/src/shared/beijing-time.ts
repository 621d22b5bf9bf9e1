// The time of the national platform and of a Chinese office's calendar: UTC+8 (no daylight saving).
// Used at the edges only (the national format's timestamps, reconciliation periods, 1101's "today").
export const BEIJING_OFFSET_MS = 8 * 3_600_000;

/** The instant as if UTC were Beijing: read its UTC fields for Beijing's date and clock. */
export const beijingClock = (ms: number): Date => new Date(ms + BEIJING_OFFSET_MS);

/** YYYY-MM-DD in Beijing. */
export const beijingDay = (ms: number): string => beijingClock(ms).toISOString().slice(0, 10);
