/**
 * A small typed builder of ONNX graphs over the published schema (the `onnx-proto` package's generated protobuf
 * classes): named initializers, one method per operator used by the exported encoders with its attributes typed,
 * and the ModelProto around the graph. Every method returns the name of the value it produced, so graphs read
 * like the tfjs code they mirror.
 *
 * Opset 17 (ONNX 1.12, IR version 8): the first with LayerNormalization, run by onnxruntime 1.14 and later on
 * every execution provider of onnxruntime-node and onnxruntime-web. Only standard ai.onnx operators are used.
 */
import onnxProto, { type onnx as proto } from "onnx-proto";

const { onnx } = onnxProto;

export type { proto as onnxTypes };

export const OPSET = 17;
export const IR_VERSION = 8;

const DataType = onnx.TensorProto.DataType;
const AttributeType = onnx.AttributeProto.AttributeType;

/** A dimension: a fixed size, or a name for a size chosen at run time ("batch"). */
export type Dim = number | string;

export type ElementType = "float32" | "int32" | "int64";

const ELEMENT: Record<ElementType, number> = {
  float32: DataType.FLOAT,
  int32: DataType.INT32,
  int64: DataType.INT64,
};

export interface ValueSpec {
  name: string;
  type: ElementType;
  shape: Dim[];
}

function valueInfo(v: ValueSpec): proto.IValueInfoProto {
  const dim = v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return { name: v.name, type: { tensorType: { elemType: ELEMENT[v.type], shape: { dim } } } };
}

function bytesOf(a: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  // Typed arrays are little-endian on every platform Node runs on, as raw_data requires.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const intAttr = (name: string, i: number): proto.IAttributeProto => ({ name, type: AttributeType.INT, i });
const floatAttr = (name: string, f: number): proto.IAttributeProto => ({
  name,
  type: AttributeType.FLOAT,
  f,
});
const intsAttr = (name: string, ints: number[]): proto.IAttributeProto => ({
  name,
  type: AttributeType.INTS,
  ints,
});

/** Builds one graph: inputs, outputs, initializers and nodes in topological order (the order they are added). */
export class GraphBuilder {
  private readonly nodes: proto.INodeProto[] = [];
  private readonly initializers: proto.ITensorProto[] = [];
  private readonly inputs: ValueSpec[] = [];
  private readonly outputs: ValueSpec[] = [];
  private readonly names = new Set<string>();
  private readonly int64Constants = new Map<string, string>();
  /** Values in the initializers, for the size report. */
  weightCount = 0;

  constructor(readonly name: string) {}

  /** `base` if no value has that name yet, else base_2, base_3, ... */
  fresh(base: string): string {
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  input(spec: ValueSpec): string {
    this.names.add(spec.name);
    this.inputs.push(spec);
    return spec.name;
  }

  /** Names the graph output `spec.name` as a copy of `value` (an Identity node, so any value can be exposed). */
  output(value: string, spec: ValueSpec): void {
    this.op("Identity", [value], [], spec.name);
    this.outputs.push(spec);
  }

  /** A float32 initializer. */
  floats(name: string, data: Float32Array, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new RangeError(`${name}: [${dims}] does not hold ${data.length} values`);
    const n = this.fresh(name);
    this.initializers.push({ name: n, dims, dataType: DataType.FLOAT, rawData: bytesOf(data) });
    this.weightCount += data.length;
    return n;
  }

  /** An int64 initializer (shapes, axes, indices); equal constants are shared. */
  int64s(values: number[], dims: number[] = [values.length]): string {
    const key = `${dims}:${values}`;
    const known = this.int64Constants.get(key);
    if (known) return known;
    const n = this.fresh(`const/i64/${values.join("_") || "empty"}`);
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name: n, dims, dataType: DataType.INT64, rawData: bytesOf(data) });
    this.int64Constants.set(key, n);
    return n;
  }

  /** A scalar float constant. */
  scalar(value: number, name = `const/f32/${value}`): string {
    return this.floats(name, Float32Array.of(value), []);
  }

  /** An int32 initializer. */
  int32s(name: string, values: number[], dims: number[] = [values.length]): string {
    const n = this.fresh(name);
    this.initializers.push({
      name: n,
      dims,
      dataType: DataType.INT32,
      rawData: bytesOf(Int32Array.from(values)),
    });
    return n;
  }

  /** One node with one output, named after `out` (default: the operator). */
  op(type: string, inputs: string[], attributes: proto.IAttributeProto[] = [], out = type): string {
    const output = this.fresh(out);
    this.nodes.push({
      opType: type,
      name: `${output}:${type}`,
      input: inputs,
      output: [output],
      attribute: attributes,
    });
    return output;
  }

  add(a: string, b: string, out?: string): string {
    return this.op("Add", [a, b], [], out ?? `${a}/add`);
  }
  sub(a: string, b: string, out?: string): string {
    return this.op("Sub", [a, b], [], out ?? `${a}/sub`);
  }
  mul(a: string, b: string, out?: string): string {
    return this.op("Mul", [a, b], [], out ?? `${a}/mul`);
  }
  div(a: string, b: string, out?: string): string {
    return this.op("Div", [a, b], [], out ?? `${a}/div`);
  }
  matMul(a: string, b: string, out?: string): string {
    return this.op("MatMul", [a, b], [], out ?? `${a}/matmul`);
  }
  unary(type: "Erf" | "Sqrt" | "Relu" | "Shape", x: string, out?: string): string {
    return this.op(type, [x], [], out ?? `${x}/${type.toLowerCase()}`);
  }
  /** Reshape; 0 in `shape` copies the input's dimension (the batch), -1 infers one. */
  reshape(x: string, shape: number[], out?: string): string {
    return this.op("Reshape", [x, this.int64s(shape)], [], out ?? `${x}/reshape`);
  }
  transpose(x: string, perm: number[], out?: string): string {
    return this.op("Transpose", [x], [intsAttr("perm", perm)], out ?? `${x}/transpose`);
  }
  softmax(x: string, axis: number, out?: string): string {
    return this.op("Softmax", [x], [intAttr("axis", axis)], out ?? `${x}/softmax`);
  }
  concat(xs: string[], axis: number, out = "concat"): string {
    return this.op("Concat", xs, [intAttr("axis", axis)], out);
  }
  gather(data: string, indices: string, axis: number, out?: string): string {
    return this.op("Gather", [data, indices], [intAttr("axis", axis)], out ?? `${data}/gather`);
  }
  expand(x: string, shape: string, out?: string): string {
    return this.op("Expand", [x, shape], [], out ?? `${x}/expand`);
  }
  /** Slice along `axes` (one start/end per axis). */
  slice(x: string, starts: number[], ends: number[], axes: number[], out?: string): string {
    const inputs = [x, this.int64s(starts), this.int64s(ends), this.int64s(axes)];
    return this.op("Slice", inputs, [], out ?? `${x}/slice`);
  }
  unsqueeze(x: string, axes: number[], out?: string): string {
    return this.op("Unsqueeze", [x, this.int64s(axes)], [], out ?? `${x}/unsqueeze`);
  }
  /** ReduceMean over `axes`, keeping them (opset 17: axes is an attribute). */
  reduceMean(x: string, axes: number[], out?: string): string {
    return this.op("ReduceMean", [x], [intsAttr("axes", axes), intAttr("keepdims", 1)], out ?? `${x}/mean`);
  }
  /** Constant padding; `pads` is ONNX's [begin per axis..., end per axis...]. */
  pad(x: string, pads: number[], value: string, out?: string): string {
    return this.op("Pad", [x, this.int64s(pads), value], [], out ?? `${x}/pad`);
  }
  equal(a: string, b: string, out?: string): string {
    return this.op("Equal", [a, b], [], out ?? `${a}/equal`);
  }
  castToFloat(x: string, out?: string): string {
    return this.op("Cast", [x], [intAttr("to", DataType.FLOAT)], out ?? `${x}/float`);
  }
  layerNormalization(x: string, scale: string, bias: string, eps: number, out?: string): string {
    const attrs = [intAttr("axis", -1), floatAttr("epsilon", eps)];
    return this.op("LayerNormalization", [x, scale, bias], attrs, out ?? `${x}/ln`);
  }
  /** Inference BatchNorm over the channels of [N, C] with given statistics. */
  batchNormalization(
    x: string,
    inputs: { scale: string; bias: string; mean: string; variance: string },
    eps: number,
    out?: string,
  ): string {
    const { scale, bias, mean, variance } = inputs;
    return this.op(
      "BatchNormalization",
      [x, scale, bias, mean, variance],
      [floatAttr("epsilon", eps)],
      out ?? `${x}/bn`,
    );
  }

  /** The ModelProto of the graph. */
  model(docString: string, metadata: Record<string, string> = {}): proto.IModelProto {
    return {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET }],
      producerName: "vatt",
      producerVersion: "0.1.0",
      docString,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    };
  }

  inputSpecs(): ValueSpec[] {
    return this.inputs.slice();
  }

  /** Operator counts, for the report ({ MatMul: 12, ... }). */
  operatorCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const n of this.nodes) counts[n.opType as string] = (counts[n.opType as string] ?? 0) + 1;
    return counts;
  }
}

/** The bytes of an .onnx file. */
export function encodeModel(model: proto.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
