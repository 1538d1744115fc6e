// `stream`: the classes SDKs test values against (`instanceof Readable`);
// there is no stream I/O in the sandbox.
import { EventEmitter } from 'events';
export class Stream extends EventEmitter { pipe(destination) { return destination; } }
export class Readable extends Stream {
  static from() { throw new Error('`stream.Readable.from` is not available in the stephost sandbox'); }
}
export class Writable extends Stream {}
export class Duplex extends Readable {}
export class Transform extends Duplex {}
export class PassThrough extends Transform {}
const unavailable = () => { throw new Error('stream pipelines are not available in the stephost sandbox'); };
export const pipeline = unavailable;
export const finished = unavailable;
Stream.Stream = Stream; Stream.Readable = Readable; Stream.Writable = Writable; Stream.Duplex = Duplex;
Stream.Transform = Transform; Stream.PassThrough = PassThrough; Stream.pipeline = pipeline; Stream.finished = finished;
export default Stream;
