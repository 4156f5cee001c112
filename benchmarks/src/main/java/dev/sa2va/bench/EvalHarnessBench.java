package dev.sa2va.bench;

import dev.sa2va.core.Devices;
import dev.sa2va.data.Sample;
import dev.sa2va.data.SampleSource;
import dev.sa2va.data.SyntheticFundus;
import dev.sa2va.data.SyntheticSource;
import dev.sa2va.eval.Evaluator;
import dev.sa2va.eval.FrangiVesselness;
import dev.sa2va.eval.Segmenter;
import dev.sa2va.eval.ThresholdCalibration;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the evaluation harness costs per sample on top of the model, at Sa2VA's output size: scoring one
 * precomputed bf16 map (checks, FOV masking, counts; no files), a 99-threshold calibration sweep of one map, and
 * the Frangi baseline segmenter. Every method ends with its results on the host, so times include the syncs.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class EvalHarnessBench {
    static final int SAMPLES = 8;

    /** Image side in pixels. */
    @Param({"1024"})
    public int side;

    Sample[] samples;
    Tensor[] maps;
    SampleSource source;
    Segmenter fixed;
    Evaluator evaluator;
    FrangiVesselness frangi;

    void prepare(Device d) {
        SyntheticSource syn = new SyntheticSource(SyntheticFundus.Config.defaults().withSize(side, side), 1, SAMPLES);
        samples = new Sample[SAMPLES];
        maps = new Tensor[SAMPLES];
        for (int i = 0; i < SAMPLES; i++) {
            samples[i] = syn.load(i);
            // a map of the right kind and size: the truth, softened, on the device in bf16 (as Sa2VA's logits)
            maps[i] = samples[i].mask().to(d, ScalarType.BFloat16).mul(BenchSupportScalars.HALF)
                    .add(BenchSupportScalars.QUARTER);
        }
        source = new SampleSource() {
            @Override
            public String name() {
                return "in memory";
            }

            @Override
            public int size() {
                return SAMPLES;
            }

            @Override
            public String id(int i) {
                return samples[i].id();
            }

            @Override
            public Sample load(int i) {
                return samples[i];
            }
        };
        fixed = new Segmenter() {
            @Override
            public String name() {
                return "precomputed";
            }

            @Override
            public Prediction segment(Input in, int level) {
                return Prediction.probabilities(maps[Integer.parseInt(in.sampleId().substring(10)) - 1]);
            }
        };
        evaluator = new Evaluator(Evaluator.Options.defaults().withProgress(null));
        frangi = new FrangiVesselness(FrangiVesselness.Options.defaults().withDevice(d));
    }

    /** Evaluator.run over 8 samples with a segmenter that returns ready maps: harness time per sample. */
    @Benchmark
    @OperationsPerInvocation(SAMPLES)
    public double scorePerSample() throws IOException {
        return evaluator.run(source, fixed).dice().mean();
    }

    /** One map through the default 99-threshold sweep (99 kernel launches, one host copy). */
    @Benchmark
    public int calibrationSweep() {
        try (PointerScope scope = new PointerScope()) {
            ThresholdCalibration c = new ThresholdCalibration();
            c.add(Segmenter.Prediction.probabilities(maps[0]), samples[0].mask(), samples[0].fov());
            return c.samples();
        }
    }

    /** The Frangi baseline on one image (5 scales), map copied back to the host. */
    @Benchmark
    public double frangi() throws Exception {
        try (PointerScope scope = new PointerScope()) {
            Sample s = samples[0];
            return frangi.segment(new Segmenter.Input(s.id(), s.imageId(), s.image(), s.text()), 0).map().sum()
                    .item().toDouble();
        }
    }

    public static class Cuda extends EvalHarnessBench {
        @Setup(Level.Trial)
        public void setup() {
            prepare(BenchSupport.cudaOrFail());
        }
    }

    public static class Cpu extends EvalHarnessBench {
        @Setup(Level.Trial)
        public void setup() {
            prepare(Devices.cpu());
        }
    }

    /** Scalars made once, outside any scope. */
    static final class BenchSupportScalars {
        static final org.bytedeco.pytorch.Scalar HALF = new org.bytedeco.pytorch.Scalar(0.5);
        static final org.bytedeco.pytorch.Scalar QUARTER = new org.bytedeco.pytorch.Scalar(0.25);
    }
}
