/**
 * How the embedding index's rows lie in its Parquet parts (sinks/embedding-index.ts): id, file, start, end, and one
 * fixed-size list<float32> column per embedding space; written from rows in memory and read back a row group at a
 * time, every vector checked to have its space's width.
 */
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  type Table,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { EMBEDDING_COLUMNS, type EmbeddingColumn } from "./embed-writer.js";

/** The width of each embedding space an index holds. */
export type Dims = Partial<Record<EmbeddingColumn, number>>;

/** Rows of an index in memory: parallel arrays, and per space its vectors row-major. */
export interface IndexRows {
  ids: string[];
  files: string[];
  starts: number[];
  ends: number[];
  vectors: Partial<Record<EmbeddingColumn, Float32Array>>;
}

/** The spaces `dims` names, in the canonical column order; each width must be a positive integer. */
export function checkDims(dims: Dims): EmbeddingColumn[] {
  const columns = EMBEDDING_COLUMNS.filter((c) => dims[c] !== undefined);
  if (columns.length === 0)
    throw new RangeError(`an embedding index needs at least one of ${EMBEDDING_COLUMNS}`);
  for (const c of columns) {
    if (!Number.isInteger(dims[c]) || dims[c]! <= 0)
      throw new RangeError(`dims.${c} must be a positive integer`);
  }
  return columns;
}

/** Arrow column `name` of `table` as one row-major Float32Array, checking every row holds `dim` floats. */
function vectorColumn(table: Table, name: string, dim: number, where: string): Float32Array {
  const column = table.getChild(name);
  if (!column) throw new Error(`${where}: no column ${name}`);
  const out = new Float32Array(table.numRows * dim);
  let row = 0;
  for (const data of column.data) {
    const child = data.children[0];
    const values = child.values as Float32Array;
    const offsets = data.valueOffsets as Int32Array | undefined; // a list (Parquet has no fixed-size list)
    for (let i = 0; i < data.length; i++, row++) {
      const from = offsets ? offsets[data.offset + i] : (data.offset + i) * dim;
      const to = offsets ? offsets[data.offset + i + 1] : from + dim;
      if (to - from !== dim)
        throw new Error(`${where}: row ${row} of ${name} has ${to - from} floats, not ${dim}`);
      out.set(values.subarray(child.offset + from, child.offset + to), row * dim);
    }
  }
  return out;
}

/** One row group of a part as rows (vectors as stored: normalised when appended). */
export function rowsOfTable(table: Table, dims: Dims, where: string): IndexRows {
  const column = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`${where}: no column ${name}; re-index into a new folder`);
    return c;
  };
  const vectors: Partial<Record<EmbeddingColumn, Float32Array>> = {};
  for (const c of checkDims(dims)) vectors[c] = vectorColumn(table, c, dims[c]!, where);
  return {
    ids: Array.from(column("id") as Iterable<string>),
    files: Array.from(column("file") as Iterable<string>),
    starts: Array.from(column("start").toArray() as Float64Array),
    ends: Array.from(column("end").toArray() as Float64Array),
    vectors,
  };
}

/** The parts' schema for these spaces. */
export function rowSchema(dims: Dims): Schema {
  return new Schema([
    new Field("id", new Utf8(), false),
    new Field("file", new Utf8(), false),
    new Field("start", new Float64(), false),
    new Field("end", new Float64(), false),
    ...checkDims(dims).map(
      (c) => new Field(c, new FixedSizeList(dims[c]!, new Field("item", new Float32(), false)), false),
    ),
  ]);
}

/** Rows as one record batch of `schema`. */
export function rowBatch(schema: Schema, rows: IndexRows): RecordBatch {
  const n = rows.ids.length;
  const children: Data[] = [
    vectorFromArray(rows.ids, new Utf8()).data[0],
    vectorFromArray(rows.files, new Utf8()).data[0],
    makeData({ type: new Float64(), length: n, data: Float64Array.from(rows.starts) }),
    makeData({ type: new Float64(), length: n, data: Float64Array.from(rows.ends) }),
  ];
  for (const field of schema.fields.slice(4)) {
    const type = field.type as FixedSizeList;
    const values = rows.vectors[field.name as EmbeddingColumn]!;
    const child = makeData({ type: new Float32(), length: values.length, data: values });
    children.push(makeData({ type, length: n, child }));
  }
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
}
