import type { Reading } from '@streamgauge/core';

/**
 * The readings table (DATA_MODEL.md): the reading's fields, plus where it
 * came from and when it was ingested. One row per `(node_id, timestamp)`.
 */
export interface WarehouseRow {
  readonly node_id: string;
  /** Event time, epoch ms. */
  readonly timestamp: number;
  readonly flow_rate: number | null;
  readonly pressure: number | null;
  readonly pressure_1: number | null;
  readonly pressure_2: number | null;
  readonly temperature: number | null;
  readonly volume: number | null;
  readonly data_quality_score: number | null;
  readonly district_id: string | null;
  readonly node_name: string | null;
  readonly node_type: string | null;
  readonly is_interpolated: boolean | null;
  /** The file a reading was imported from, or the gateway that sent it. */
  readonly source_file: string | null;
  /** When the pipeline accepted it, epoch ms (the stream entry's time). */
  readonly ingestion_timestamp: number;
  /**
   * The stream entry that carried it (`ms-seq`), null for an import. The
   * backfill counts rows up to a stream position and replays the stream
   * after it, so it must know which rows came through which entry.
   */
  readonly stream_entry: string | null;
}

export type ColumnType = 'string' | 'timestamp' | 'double' | 'boolean';

/** Every column, in table order, with its type; `key` columns identify a row. */
export const COLUMNS: readonly {
  readonly name: keyof WarehouseRow;
  readonly type: ColumnType;
  readonly key?: true;
}[] = [
  { name: 'node_id', type: 'string', key: true },
  { name: 'timestamp', type: 'timestamp', key: true },
  { name: 'flow_rate', type: 'double' },
  { name: 'pressure', type: 'double' },
  { name: 'pressure_1', type: 'double' },
  { name: 'pressure_2', type: 'double' },
  { name: 'temperature', type: 'double' },
  { name: 'volume', type: 'double' },
  { name: 'data_quality_score', type: 'double' },
  { name: 'district_id', type: 'string' },
  { name: 'node_name', type: 'string' },
  { name: 'node_type', type: 'string' },
  { name: 'is_interpolated', type: 'boolean' },
  { name: 'source_file', type: 'string' },
  { name: 'ingestion_timestamp', type: 'timestamp' },
  { name: 'stream_entry', type: 'string' },
];

export const READINGS_TABLE = 'readings';

/** Where a row came from: a stream entry (its id is when it was accepted) or an import. */
export type RowOrigin =
  | { readonly entry: string; readonly source: string }
  | { readonly entry?: undefined; readonly source: string; readonly importedAt: number };

/** A validated reading as a row; `source` is the gateway or the file. */
export function rowOf(reading: Reading, origin: RowOrigin): WarehouseRow {
  const { source } = origin;
  return {
    node_id: reading.node_id,
    timestamp: reading.timestamp,
    flow_rate: reading.flow_rate ?? null,
    pressure: reading.pressure ?? null,
    pressure_1: reading.pressure_1 ?? null,
    pressure_2: reading.pressure_2 ?? null,
    temperature: reading.temperature ?? null,
    volume: reading.volume ?? null,
    data_quality_score: reading.data_quality_score ?? null,
    district_id: reading.district_id ?? null,
    node_name: reading.node_name ?? null,
    node_type: reading.node_type ?? null,
    is_interpolated: reading.is_interpolated ?? null,
    source_file: reading.source_file ?? (source === '' ? null : source),
    ingestion_timestamp:
      origin.entry === undefined
        ? origin.importedAt
        : Number(origin.entry.slice(0, origin.entry.indexOf('-'))),
    stream_entry: origin.entry ?? null,
  };
}
