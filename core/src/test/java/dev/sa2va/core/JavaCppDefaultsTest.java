package dev.sa2va.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sa2va.sam2.Sam2Config;
import dev.sa2va.sam2.Sam2Weights;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

/**
 * JavaCPP reads its limits once, when {@code Pointer} initialises, so whether {@link JavaCppDefaults} took effect
 * depends on what a JVM touches first. Each case therefore runs in a fresh JVM ({@link Probe}) with this test's
 * class path and reports the {@code maxPhysicalBytes} that JavaCPP ended up with.
 */
class JavaCppDefaultsTest {

    /** Child JVM: touches one entry point first, then prints what JavaCPP read. */
    public static final class Probe {
        public static void main(String[] args) {
            switch (args[0]) {
                case "devices": { // the way most of the library starts
                    Tensor t = Torch.zeros(ScalarType.Float, Devices.cpu(), 2, 3);
                    if (t.numel() != 6) {
                        throw new AssertionError("numel " + t.numel());
                    }
                    break;
                }
                case "sam2": // a model class as the very first contact
                    Sam2Weights.random(Sam2Config.tinyRandom(), 1, ScalarType.Float, Devices.cpu()).close();
                    break;
                case "javacpp-first": // user code creating a JavaCPP object before any class of this library
                    new Tensor().close();
                    Devices.cpu();
                    break;
                default:
                    throw new IllegalArgumentException(args[0]);
            }
            System.out.println("maxPhysicalBytes=" + Pointer.maxPhysicalBytes() + " inEffect="
                    + JavaCppDefaults.inEffect());
        }
    }

    private static long childMaxPhysicalBytes(String firstTouch, String... jvmProps) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx512m");
        String cache = System.getProperty("org.bytedeco.javacpp.cachedir");
        if (cache != null) {
            cmd.add("-Dorg.bytedeco.javacpp.cachedir=" + cache);
        }
        cmd.addAll(List.of(jvmProps));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Probe.class.getName());
        cmd.add(firstTouch);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out;
        try {
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("probe JVM did not finish in 120 s: " + cmd);
            }
        } finally {
            out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
        assertEquals(0, p.exitValue(), () -> "probe JVM failed:\n" + out);
        for (String line : out.split("\n")) {
            if (line.startsWith("maxPhysicalBytes=")) {
                return Long.parseLong(line.substring("maxPhysicalBytes=".length()).split(" ")[0]);
            }
        }
        throw new AssertionError("no maxPhysicalBytes line in:\n" + out);
    }

    @Test
    void libraryEntryPointsTurnOffThePerObjectResidentMemoryCheck() throws Exception {
        assertEquals(0, childMaxPhysicalBytes("devices"));
        assertEquals(0, childMaxPhysicalBytes("sam2"));
    }

    @Test
    void aValueTheUserSetIsKeptInEitherSpelling() throws Exception {
        assertEquals(3L << 30, childMaxPhysicalBytes("devices", "-Dorg.bytedeco.javacpp.maxPhysicalBytes=3g"));
        assertEquals(2L << 30, childMaxPhysicalBytes("devices", "-Dorg.bytedeco.javacpp.maxphysicalbytes=2g"));
    }

    @Test
    void javacppTouchedFirstKeepsJavacppsOwnDefault() throws Exception {
        // the documented limitation: JavaCPP initialised before the library had a chance to set the property
        long m = childMaxPhysicalBytes("javacpp-first");
        assertNotEquals(0, m);
        assertTrue(m > 0, "JavaCPP's default is 4x the heap limit, got " + m);
    }

    @Test
    void applyIsIdempotentAndLeavesAnExistingValue() {
        String before = System.getProperty(JavaCppDefaults.MAX_PHYSICAL_BYTES);
        JavaCppDefaults.apply();
        JavaCppDefaults.apply();
        // in this (surefire) JVM some earlier class may have set it; either way a second apply changes nothing
        assertEquals(before == null ? "0" : before, System.getProperty(JavaCppDefaults.MAX_PHYSICAL_BYTES,
                "unset"));
    }
}
