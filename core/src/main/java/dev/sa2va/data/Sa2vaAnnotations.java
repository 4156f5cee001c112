package dev.sa2va.data;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.sa2va.core.Torch;
import dev.sa2va.io.Images;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.bytedeco.pytorch.Tensor;

/**
 * Sa2VA's fine-tuning data ({@code docs/finetune.md}, {@code Sa2VAFinetuneDataset}): an {@code annotations.json}
 * holding a list of
 * <pre>
 * {"image": "file.jpg", "mask": [[[x1, y1, x2, y2, ...], ...], ...], "text": ["expression 1", ...]}
 * </pre>
 * with one entry of {@code mask} (a list of polygons, united) per entry of {@code text}. Each (image, object) pair
 * is one {@link Sample}; the objects of an image come one after another and share its {@code imageId}. Images are
 * looked up in {@code images/} next to the JSON file (Sa2VA's default {@code data_prefix}), or next to the file
 * itself when there is no such folder.
 *
 * <p>As in Sa2VA's loader: the text is lower-cased and a trailing '.' dropped; a polygon of exactly four numbers is
 * a COCO box {@code [x, y, w, h]} (pycocotools' {@code frPyObjects} reads it so). Polygons are filled by
 * {@link PolygonRaster}. The JSON structure is checked when opening (errors name the file, entry and object); the
 * image is read when a sample is loaded.
 */
public final class Sa2vaAnnotations implements SampleSource {
    private record Item(String image, List<List<double[]>> objects, List<String> texts) {
    }

    private record Ref(int item, int object, String id) {
    }

    private final Path json;
    private final Path imageDir;
    private final List<Item> items;
    private final List<Ref> refs = new ArrayList<>();
    // the objects of one image are consecutive: keep the last decoded image (as a Java object, not a Tensor: a
    // Tensor made inside a caller's PointerScope dies with that scope)
    private String cachedImage;
    private BufferedImage cachedDecoded;

    private Sa2vaAnnotations(Path json, Path imageDir, List<Item> items) {
        this.json = json;
        this.imageDir = imageDir;
        this.items = items;
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < items.size(); i++) {
            Item it = items.get(i);
            for (int k = 0; k < it.objects().size(); k++) {
                String id = it.image() + "#" + k;
                if (!seen.add(id)) {
                    id = id + "@" + i; // the same image listed twice
                    seen.add(id);
                }
                refs.add(new Ref(i, k, id));
            }
        }
    }

    /** Opens {@code annotations.json}; images in {@code images/} beside it, else beside the file. */
    public static Sa2vaAnnotations open(Path json) throws IOException {
        Path dir = json.toAbsolutePath().getParent();
        Path images = dir.resolve("images");
        return open(json, Files.isDirectory(images) ? images : dir);
    }

    public static Sa2vaAnnotations open(Path json, Path imageDir) throws IOException {
        if (!Files.isRegularFile(json)) {
            throw new IOException("annotations file not found: " + json);
        }
        JsonElement root;
        try (Reader r = Files.newBufferedReader(json, StandardCharsets.UTF_8)) {
            root = JsonParser.parseReader(r);
        } catch (JsonParseException e) {
            throw new IOException(json + ": not valid JSON: " + e.getMessage(), e);
        }
        if (!root.isJsonArray()) {
            throw new IOException(json + ": expected a JSON list of {image, mask, text} entries");
        }
        List<Item> items = new ArrayList<>();
        JsonArray arr = root.getAsJsonArray();
        for (int i = 0; i < arr.size(); i++) {
            items.add(parseItem(json, i, arr.get(i)));
        }
        if (items.isEmpty()) {
            throw new IOException(json + ": no entries");
        }
        return new Sa2vaAnnotations(json, imageDir, items);
    }

    private static Item parseItem(Path json, int i, JsonElement e) throws IOException {
        String where = json + ": entry " + i;
        if (!e.isJsonObject()) {
            throw new IOException(where + ": expected an object {image, mask, text}");
        }
        JsonObject o = e.getAsJsonObject();
        JsonElement image = o.get("image");
        if (image == null || !image.isJsonPrimitive() || !image.getAsJsonPrimitive().isString()) {
            throw new IOException(where + ": missing string key 'image'");
        }
        JsonElement mask = o.get("mask"), text = o.get("text");
        if (mask == null || !mask.isJsonArray()) {
            throw new IOException(where + " (" + image.getAsString() + "): missing list key 'mask'");
        }
        if (text == null || !text.isJsonArray()) {
            throw new IOException(where + " (" + image.getAsString() + "): missing list key 'text'");
        }
        where += " (" + image.getAsString() + ")";
        JsonArray masks = mask.getAsJsonArray(), texts = text.getAsJsonArray();
        if (masks.size() != texts.size()) {
            throw new IOException(where + ": " + masks.size() + " masks but " + texts.size() + " texts; need one text "
                    + "per mask");
        }
        List<List<double[]>> objects = new ArrayList<>();
        List<String> phrases = new ArrayList<>();
        for (int k = 0; k < masks.size(); k++) {
            JsonElement t = texts.get(k);
            if (!t.isJsonPrimitive() || !t.getAsJsonPrimitive().isString()) {
                throw new IOException(where + ": text " + k + " is not a string");
            }
            phrases.add(normalise(t.getAsString()));
            JsonElement m = masks.get(k);
            if (!m.isJsonArray()) {
                throw new IOException(where + ": mask " + k + " is not a list of polygons (RLE masks are not supported)");
            }
            List<double[]> polys = new ArrayList<>();
            JsonArray pa = m.getAsJsonArray();
            for (int p = 0; p < pa.size(); p++) {
                polys.add(polygon(where + ": mask " + k + " polygon " + p, pa.get(p)));
            }
            objects.add(polys);
        }
        return new Item(image.getAsString(), objects, phrases);
    }

    private static double[] polygon(String where, JsonElement e) throws IOException {
        if (!e.isJsonArray()) {
            throw new IOException(where + ": expected a flat list [x1, y1, x2, y2, ...]");
        }
        JsonArray a = e.getAsJsonArray();
        double[] xy = new double[a.size()];
        for (int j = 0; j < xy.length; j++) {
            JsonElement v = a.get(j);
            if (!v.isJsonPrimitive() || !((JsonPrimitive) v).isNumber()) {
                throw new IOException(where + ": coordinate " + j + " is not a number: " + v);
            }
            xy[j] = v.getAsDouble();
            if (!Double.isFinite(xy[j])) {
                throw new IOException(where + ": coordinate " + j + " is not finite");
            }
        }
        if (xy.length == 4) {
            // pycocotools reads a 4-number entry as a box [x, y, w, h]
            double x = xy[0], y = xy[1], w = xy[2], h = xy[3];
            return new double[] {x, y, x, y + h, x + w, y + h, x + w, y};
        }
        if (xy.length < 6 || xy.length % 2 != 0) {
            throw new IOException(where + ": a polygon needs an even number (>= 6) of coordinates, got " + xy.length);
        }
        return xy;
    }

    /** Sa2VA's loader: lower case, no trailing period. */
    static String normalise(String text) {
        String t = text.toLowerCase(Locale.ROOT);
        return t.endsWith(".") ? t.substring(0, t.length() - 1) : t;
    }

    public Path imageDir() {
        return imageDir;
    }

    @Override
    public String name() {
        return "Sa2VA annotations " + json;
    }

    @Override
    public int size() {
        return refs.size();
    }

    @Override
    public String id(int index) {
        checkIndex(index);
        return refs.get(index).id();
    }

    @Override
    public Sample load(int index) throws IOException {
        checkIndex(index);
        Ref ref = refs.get(index);
        Item it = items.get(ref.item());
        Path file = imageDir.resolve(it.image());
        BufferedImage decoded;
        synchronized (this) {
            decoded = file.toString().equals(cachedImage) ? cachedDecoded : null;
        }
        if (decoded == null) {
            decoded = Images.read(file);
            synchronized (this) {
                cachedDecoded = decoded;
                cachedImage = file.toString();
            }
        }
        Tensor rgb = Images.rgbTensor(decoded);
        int h = (int) rgb.size(0), w = (int) rgb.size(1);
        byte[] mask = new byte[w * h];
        for (double[] poly : it.objects().get(ref.object())) {
            PolygonRaster.fill(poly, w, h, mask);
        }
        return new Sample(ref.id(), file.toString(), rgb, Torch.fromBytes(mask, h, w), null,
                it.texts().get(ref.object()));
    }
}
