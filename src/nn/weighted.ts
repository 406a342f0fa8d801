// The weighted layers' shared plumbing (Conv2D, Conv2DTranspose, Dense): a weight and an optional bias
// created once the input size is known, either given to the constructor or inferred from the first input
// shape (Keras's build()). Until then the parameters are unresolved and asking for them says what to give.

import { Layer, ShapeError, type LayerConfig, type Param } from "./layer.ts";
import type { InitName } from "./init.ts";

export abstract class WeightedLayer extends Layer {
  abstract readonly useBias: boolean;
  abstract readonly init: InitName;
  /** The constructor option that fixes the input size ahead of time ("inChannels", "inFeatures"). */
  protected abstract readonly inputSizeOption: string;
  protected weightParam: Param | null = null;
  protected biasParam: Param | null = null;

  /** The layer's weight (its shape is in the layer's header comment). */
  get weight(): Param {
    return this.weightParam ?? this.unresolved("weight");
  }

  get bias(): Param | null {
    return this.useBias ? (this.biasParam ?? this.unresolved("bias")) : null;
  }

  /** True once the input size is known and the parameters exist. */
  override isBuilt(): boolean {
    return this.weightParam !== null;
  }

  private paramList: readonly Param[] = Object.freeze([]);

  /** `[weight, bias?]`: one frozen list, rebuilt only when the parameters are (a step allocates none). */
  override params(): Param[] {
    const w = this.weightParam;
    const b = this.biasParam;
    const list = this.paramList;
    if (w === null) return [];
    if (list[0] !== w || list.length !== (b ? 2 : 1) || (b !== null && list[1] !== b))
      this.paramList = Object.freeze(b ? [w, b] : [w]);
    return this.paramList as Param[];
  }

  /**
   * Whether an image layer's parameters exist yet; once they do, every input must have the channel
   * count C they were made for.
   */
  protected builtForChannels(C: number, channelsIn: number | null): boolean {
    if (this.weightParam === null) return false;
    if (C !== channelsIn) {
      throw new ShapeError(`${this.describe()}: expected input of shape (N, ${channelsIn}, H, W), got (N, ${C}, H, W)`);
    }
    return true;
  }

  /**
   * config() of a weighted layer, its constructor's options in the order saved models list them: the type, the
   * input size under its option once known, the layer's own options, then bias and init.
   */
  protected weightedConfig(inputSize: number | null, layerOptions: Record<string, unknown>): LayerConfig {
    return {
      type: this.type,
      ...(inputSize !== null ? { [this.inputSizeOption]: inputSize } : {}),
      ...layerOptions,
      bias: this.useBias,
      init: this.init,
    };
  }

  protected unresolved(what: string): never {
    throw new Error(
      `${this.describe()}: ${what} is not known yet: give ${this.inputSizeOption}, or build the model ` +
        `with an inputShape (or run a forward pass) first`,
    );
  }
}
