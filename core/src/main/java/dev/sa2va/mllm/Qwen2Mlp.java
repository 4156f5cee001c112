package dev.sa2va.mllm;

import java.io.IOException;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/** Qwen2's SwiGLU MLP: {@code down(silu(gate(x)) · up(x))}, no biases; gate and up run as one GEMM. */
final class Qwen2Mlp implements AutoCloseable {
    private final long intermediate;
    private final Nn.Linear gateUp;
    private final Nn.Linear down;

    private Qwen2Mlp(long intermediate, Nn.Linear gateUp, Nn.Linear down) {
        this.intermediate = intermediate;
        this.gateUp = gateUp;
        this.down = down;
    }

    static Qwen2Mlp load(WeightSource w, String p, Sa2vaConfig.Llm c) throws IOException {
        long d = c.hiddenSize(), m = c.intermediateSize();
        try (Scope s = new Scope()) {
            Tensor gate = w.get(p + "gate_proj.weight", m, d), up = w.get(p + "up_proj.weight", m, d);
            return new Qwen2Mlp(m, new Nn.Linear(torch.cat(new TensorVector(gate, up), 0), null),
                    new Nn.Linear(w.get(p + "down_proj.weight", d, m), null));
        }
    }

    Tensor forward(Tensor x) {
        Tensor gu = gateUp.forward(x);
        return down.forward(torch.silu(gu.narrow(-1, 0, intermediate)).mul_(gu.narrow(-1, intermediate, intermediate)));
    }

    @Override
    public void close() {
        gateUp.close();
        down.close();
    }
}
