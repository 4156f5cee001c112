package dev.sa2va.mllm;

import org.bytedeco.pytorch.Tensor;

/**
 * Observer of intermediate activations ("vision.layer.3", "llm.final_norm", ...), for verification against a
 * reference and for debugging. The tensor is only valid during the call: a probe that keeps it must copy it
 * (and take care of its lifetime); comparing it on the spot is the intended use.
 */
@FunctionalInterface
public interface Probe {
    Probe NONE = (name, value) -> { };

    void accept(String name, Tensor value);
}
