// Sinks and the delivery loop: public surface.
export type { EventSink } from './sink.js';
export { SinkError } from './sink.js';
export { FileSink, type FileSinkOptions } from './file-sink.js';
export { HttpSink, batchKey, type HttpSinkOptions } from './http-sink.js';
export { OtlpSink, otlpLogsUrl, type OtlpSinkOptions } from './otlp-sink.js';
export { toOtlpLogs, type ExportLogsServiceRequest } from './otlp.js';
export { HttpTransport, type HttpTransportOptions } from './http-transport.js';
export { CursorStore, type SinkCursor } from './cursor.js';
export { DeliveryTracker, classifyError, type SinkDelivery, type SinkErrorClass, type SinkState } from './delivery-state.js';
export { Dispatcher, type DispatchTarget, type DispatcherOptions, type DispatchSource } from './dispatcher.js';
export { createSink, SinkConfigError, type SinkDependencies } from './factory.js';
export { backoffDelay, retry, sleep, type BackoffPolicy } from './backoff.js';
