-- The readings table, generated from packages/warehouse/src/table.ts (a test keeps it in step).
-- Replace PROJECT and DATASET.
CREATE TABLE IF NOT EXISTS `PROJECT.DATASET.readings` (
  `node_id` STRING NOT NULL,
  `timestamp` TIMESTAMP NOT NULL,
  `flow_rate` FLOAT64,
  `pressure` FLOAT64,
  `pressure_1` FLOAT64,
  `pressure_2` FLOAT64,
  `temperature` FLOAT64,
  `volume` FLOAT64,
  `data_quality_score` FLOAT64,
  `district_id` STRING,
  `node_name` STRING,
  `node_type` STRING,
  `is_interpolated` BOOL,
  `source_file` STRING,
  `ingestion_timestamp` TIMESTAMP,
  `stream_entry` STRING
)
PARTITION BY DATE(`timestamp`)
CLUSTER BY `district_id`, `node_id`, `timestamp`
OPTIONS (description = 'streamgauge: every reading, one row per (node_id, timestamp)');
