/**
 * Formatting of numbers with their units and of times in the configured
 * zone. Numbers use a fixed locale (en-US: "." decimals, "," groups) so
 * every operator reads the same figures; times are shown as
 * "2026-12-03 10:00:01" in the dashboard's zone, which the header names.
 */

const DASH = '—';
const numberFormats = new Map<string, Intl.NumberFormat>();

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A number with `digits` decimals, grouped; "—" when there is none. */
export function num(value: number | null | undefined, digits = 0): string {
  if (!isNumber(value)) return DASH;
  const key = String(digits);
  let format = numberFormats.get(key);
  if (format === undefined) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    numberFormats.set(key, format);
  }
  // Avoid "-0.0": a tiny negative rounds to zero and reads as a sign error.
  const text = format.format(value);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

function withUnit(text: string, unit: string): string {
  return text === DASH ? DASH : `${text} ${unit}`;
}

/** Flow in L/s: one decimal, two below 1 L/s (night flows are a few tenths). */
export function flow(value: number | null | undefined): string {
  return withUnit(num(value, isNumber(value) && Math.abs(value) < 1 && value !== 0 ? 2 : 1), 'L/s');
}

export function pressure(value: number | null | undefined): string {
  return withUnit(num(value, 2), 'bar');
}

export function temperature(value: number | null | undefined): string {
  return withUnit(num(value, 1), '°C');
}

export function volume(value: number | null | undefined): string {
  return withUnit(num(value, 1), 'm³');
}

export function count(value: number | null | undefined): string {
  return num(value, 0);
}

/** A fraction 0..1 as a percentage. */
export function percent(fraction: number | null | undefined): string {
  return isNumber(fraction) ? `${num(fraction * 100, 1)} %` : DASH;
}

/** A measurement in the unit an anomaly names. */
export function measurement(value: number | null | undefined, unit: string | null | undefined): string {
  switch (unit) {
    case 'L/s':
      return flow(value);
    case 'bar':
      return pressure(value);
    case '°C':
      return temperature(value);
    case 'm³':
      return volume(value);
    default:
      return unit ? withUnit(num(value, 2), unit) : num(value, 2);
  }
}

/** A measurement's signed difference, e.g. "+0.50 bar" / "-1.30 bar". */
export function signedMeasurement(value: number | null | undefined, unit: string | null | undefined): string {
  const text = measurement(value, unit);
  return isNumber(value) && value > 0 ? `+${text}` : text;
}

/** A duration in seconds, short: "42 s", "5 min", "3 h 20 min", "2 d 4 h". */
export function duration(seconds: number | null | undefined): string {
  if (!isNumber(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.floor(s)} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}

export function age(seconds: number | null | undefined): string {
  return isNumber(seconds) ? `${duration(seconds)} ago` : DASH;
}

/** Parses the API's times: ISO-8601, or the read model's "YYYY-MM-DD HH:MM:SS" (UTC). */
export function parseTime(value: string | null | undefined): Date | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const iso = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$/.test(value) ? `${value.replace(' ', 'T')}Z` : value;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Times in the dashboard's zone (an unknown zone falls back to UTC rather than failing the page). */
export class TimeFormat {
  readonly timeZone: string;
  readonly #dateTime: Intl.DateTimeFormat;
  readonly #offset: Intl.DateTimeFormat;

  constructor(timeZone: string) {
    let zone = timeZone;
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone });
    } catch {
      zone = 'UTC';
    }
    this.timeZone = zone;
    this.#dateTime = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    this.#offset = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'shortOffset' });
  }

  /** "2026-12-03 10:00:01"; the input itself when it is not a time. */
  dateTime(value: string | null | undefined): string {
    const date = parseTime(value);
    if (date === undefined) return typeof value === 'string' && value !== '' ? value : DASH;
    const parts: Record<string, string> = {};
    for (const part of this.#dateTime.formatToParts(date)) parts[part.type] = part.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  /** A chart axis label: the date ("12-03") at midnight, else the time ("08:00"), in the zone. */
  axisLabel(ms: number): string {
    const parts: Record<string, string> = {};
    for (const part of this.#dateTime.formatToParts(new Date(ms))) parts[part.type] = part.value;
    return parts.hour === '00' && parts.minute === '00'
      ? `${parts.month}-${parts.day}`
      : `${parts.hour}:${parts.minute}`;
  }

  /** The zone as shown in the header: "Europe/Rome (GMT+1)". */
  zoneLabel(): string {
    if (this.timeZone === 'UTC' || this.timeZone === 'Etc/UTC') return 'UTC';
    const offset = this.#offset.formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value;
    return offset ? `${this.timeZone} (${offset})` : this.timeZone;
  }
}
