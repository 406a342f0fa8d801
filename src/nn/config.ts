/** A serialisable description `{type, ...options}` (of a layer, loss, optimizer or schedule), defined once. */
export interface TypedConfig {
  type: string;
  [option: string]: unknown;
}
