package dev.sa2va.examples;

import dev.sa2va.core.Devices;
import dev.sa2va.io.Images;
import dev.sa2va.metrics.MaskMetrics;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Locale;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Dice, Recall, Precision and IoU of a predicted mask against a ground-truth mask, through the fused native
 * kernel (CUDA when available, else C++ on the CPU).
 *
 * <pre>
 * mvn -q -pl examples -am package exec:java -DskipTests                                  # embedded sample
 * mvn -q -pl examples -am package exec:java -DskipTests -Dexec.args="pred.png truth.png 0.5"
 * </pre>
 * The prediction may be a binary mask or an 8-bit probability map; pixels above the threshold (default 0.5)
 * count as foreground. The ground truth is foreground where its gray level is at least 128.
 */
public final class MaskScores {
    public static void main(String[] args) throws Exception {
        BufferedImage pred, truth;
        String what;
        if (args.length == 0) {
            pred = Images.read(MaskScores.class.getResourceAsStream("vessel_prediction.png"), "vessel_prediction.png");
            truth = Images.read(MaskScores.class.getResourceAsStream("vessel_truth.png"), "vessel_truth.png");
            what = "embedded sample (synthetic vessel tree; the prediction misses the thinnest branches)";
        } else if (args.length >= 2) {
            pred = Images.read(Path.of(args[0]));
            truth = Images.read(Path.of(args[1]));
            what = args[0] + " vs " + args[1];
        } else {
            System.err.println("usage: MaskScores [PREDICTION TRUTH [THRESHOLD]]");
            System.exit(2);
            return;
        }
        double threshold = args.length >= 3 ? Double.parseDouble(args[2]) : 0.5;
        if (pred.getWidth() != truth.getWidth() || pred.getHeight() != truth.getHeight()) {
            throw new IllegalArgumentException("prediction is " + pred.getWidth() + "x" + pred.getHeight()
                    + " but the ground truth is " + truth.getWidth() + "x" + truth.getHeight());
        }
        Device device = Devices.cudaAvailable() ? Devices.cuda(0) : Devices.cpu();
        // one sample: [1, H, W]
        Tensor scores = Images.grayTensor(pred).unsqueeze(0).to(device, ScalarType.Float);
        Tensor target = Images.maskTensor(truth).unsqueeze(0).to(device, ScalarType.Byte);
        MaskMetrics.Scores s = MaskMetrics.scores(MaskMetrics.confusion(scores, target, threshold))[0];
        System.out.println("sa2va-java mask scores: " + what);
        System.out.printf(Locale.ROOT, "device %s, %dx%d pixels, threshold %.2f%n", Devices.describe(device),
                pred.getWidth(), pred.getHeight(), threshold);
        System.out.printf(Locale.ROOT, "TP %d  FP %d  FN %d  TN %d%n", s.tp(), s.fp(), s.fn(), s.tn());
        System.out.printf(Locale.ROOT, "Dice %.4f  Recall %.4f  Precision %.4f  IoU %.4f%n", s.dice(), s.recall(),
                s.precision(), s.iou());
    }
}
