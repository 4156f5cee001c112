package dev.sa2va.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Readers for the public retinal-vessel datasets in the folder layouts they are distributed in (file names as in
 * the original downloads; extensions and folder names matched case-insensitively), plus a plain image/mask folder
 * pair layout and Sa2VA's {@code annotations.json} ({@link Sa2vaAnnotations}).
 *
 * <pre>
 * DRIVE      training/images/21_training.tif   training/1st_manual/21_manual1.gif   training/mask/21_training_mask.gif
 *            test/images/01_test.tif           test/1st_manual/01_manual1.gif       test/mask/01_test_mask.gif
 *                                              test/2nd_manual/01_manual2.gif (annotator 2)
 *            565x584 RGB TIFF; 20 training (21-40) + 20 test (01-20) images; FOV masks provided.
 * CHASE_DB1  Image_01L.jpg  Image_01L_1stHO.png  Image_01L_2ndHO.png (annotator 2), ... Image_14R.*, one folder;
 *            999x960 JPEG, 28 images; no FOV masks.
 * STARE      stare-images/im0001.ppm[.gz]  labels-ah/im0001.ah.ppm[.gz]  labels-vk/im0001.vk.ppm[.gz] (annotator 2);
 *            700x605 PPM, 20 labelled images (of 400); the folders may also be flat; no FOV masks.
 * HRF        images/01_h.jpg (01_dr.JPG, 01_g.jpg)  manual1/01_h.tif  mask/01_h_mask.tif;
 *            3504x2336, 45 images (15 healthy h, 15 glaucoma g, 15 diabetic retinopathy dr); FOV masks provided.
 * FIVES      train/Original/1_A.png  train/Ground truth/1_A.png  test/Original/...  test/Ground truth/...;
 *            2048x2048 PNG, 600 train + 200 test (A: AMD, D: DR, G: glaucoma, N: normal); no FOV masks.
 * FOLDERS    images/NAME.ext  masks/NAME.ext  [fov/NAME.ext]   (matched by file name without extension)
 * SA2VA      annotations.json (+ images/), see {@link Sa2vaAnnotations}
 * </pre>
 * Sources: the datasets' own download pages and public loaders (e.g. bob.ip.binseg's file lists for DRIVE, STARE,
 * CHASE_DB1 and HRF; FIVES loaders using {@code train|test/Original} and {@code Ground truth}).
 *
 * <p>Files are only listed here; they are read when a sample is loaded, so a missing or corrupt file fails that
 * sample (with the file named) instead of the whole listing. A missing folder or an empty listing is an
 * {@link IOException} right away.
 */
public final class VesselDatasets {
    /** The referring expression given with vessel datasets unless the caller chooses another. */
    public static final String DEFAULT_TEXT = "blood vessels";

    private VesselDatasets() {
    }

    public enum Layout {
        DRIVE, CHASE_DB1, STARE, HRF, FIVES, FOLDERS, SA2VA, AUTO;

        /** "drive", "chase_db1" or "chasedb1", ... (case-insensitive). */
        public static Layout parse(String s) {
            String k = s.trim().toUpperCase(Locale.ROOT).replace('-', '_');
            if (k.equals("CHASEDB1") || k.equals("CHASE")) {
                return CHASE_DB1;
            }
            try {
                return valueOf(k);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown dataset layout '" + s + "'; one of drive, chase_db1, stare, "
                        + "hrf, fives, folders, sa2va, auto");
            }
        }
    }

    /**
     * How to read a dataset.
     *
     * @param split       DRIVE: training | test | all (default test); FIVES: train | test | all (default test);
     *                    ignored elsewhere. null = the default
     * @param annotator   1 (default) or 2: DRIVE 2nd_manual (test only), CHASE_DB1 2ndHO, STARE vk
     * @param text        referring expression for every sample (null = {@link #DEFAULT_TEXT}); not used for SA2VA
     * @param estimateFov estimate a FOV mask ({@link FieldOfView}) where the dataset provides none
     */
    public record Options(String split, int annotator, String text, boolean estimateFov) {
        public Options {
            if (annotator != 1 && annotator != 2) {
                throw new IllegalArgumentException("annotator must be 1 or 2, got " + annotator);
            }
            if (text == null) {
                text = DEFAULT_TEXT;
            }
        }

        public static Options defaults() {
            return new Options(null, 1, null, false);
        }

        public Options withSplit(String s) {
            return new Options(s, annotator, text, estimateFov);
        }

        public Options withAnnotator(int a) {
            return new Options(split, a, text, estimateFov);
        }

        public Options withText(String t) {
            return new Options(split, annotator, t, estimateFov);
        }

        public Options withEstimateFov(boolean e) {
            return new Options(split, annotator, text, e);
        }
    }

    /** Opens {@code root} as {@code layout} ({@link Layout#AUTO}: recognise it by its files). */
    public static SampleSource open(Path root, Layout layout, Options o) throws IOException {
        if (!Files.exists(root)) {
            throw new IOException("dataset path not found: " + root);
        }
        Layout l = layout == Layout.AUTO ? detect(root) : layout;
        switch (l) {
            case DRIVE: return drive(root, o);
            case CHASE_DB1: return chaseDb1(root, o);
            case STARE: return stare(root, o);
            case HRF: return hrf(root, o);
            case FIVES: return fives(root, o);
            case FOLDERS: return folders(root, o);
            case SA2VA: return Files.isDirectory(root) ? Sa2vaAnnotations.open(root.resolve("annotations.json"))
                    : Sa2vaAnnotations.open(root);
            default: throw new IllegalArgumentException("layout " + l);
        }
    }

    /** Which layout {@code root} is in, from the files it holds. */
    public static Layout detect(Path root) throws IOException {
        if (Files.isRegularFile(root) && root.toString().toLowerCase(Locale.ROOT).endsWith(".json")) {
            return Layout.SA2VA;
        }
        if (!Files.isDirectory(root)) {
            throw new IOException("dataset path is neither a folder nor a .json file: " + root);
        }
        if (Files.isRegularFile(root.resolve("annotations.json"))) {
            return Layout.SA2VA;
        }
        for (Path d : new Path[] {root, findDir(root, "training"), findDir(root, "test")}) {
            Path images = d == null ? null : findDir(d, "images");
            if (images != null && !matching(images, DRIVE_IMAGE).isEmpty()) {
                return Layout.DRIVE;
            }
        }
        for (String s : new String[] {"train", "test"}) {
            Path d = findDir(root, s);
            if (d != null && findDir(d, "original") != null) {
                return Layout.FIVES;
            }
        }
        if (findDir(root, "images") != null && findDir(root, "manual1") != null) {
            return Layout.HRF;
        }
        if (!walk(root, CHASE_IMAGE).isEmpty()) {
            return Layout.CHASE_DB1;
        }
        if (!walk(root, STARE_IMAGE).isEmpty()) {
            return Layout.STARE;
        }
        if (findDir(root, "images") != null && findDir(root, "masks") != null) {
            return Layout.FOLDERS;
        }
        throw new IOException("cannot tell the dataset layout of " + root + ": expected annotations.json (Sa2VA), "
                + "training/ or test/ with images/ (DRIVE), train|test/Original (FIVES), images/ + manual1/ (HRF), "
                + "Image_NNL.jpg files (CHASE_DB1), imNNNN.ppm files (STARE) or images/ + masks/; "
                + "or name the layout explicitly");
    }

    // ---- DRIVE -----------------------------------------------------------------------------------------------

    private static final Pattern DRIVE_IMAGE = Pattern.compile("(\\d+)_(training|test)\\.tiff?", Pattern.CASE_INSENSITIVE);

    public static FileSamples drive(Path root, Options o) throws IOException {
        String split = o.split() == null ? "test" : o.split().toLowerCase(Locale.ROOT);
        List<Path> splitDirs = new ArrayList<>();
        if (findDir(root, "images") != null) {
            splitDirs.add(root); // root is a split folder itself
        } else if (split.equals("all")) {
            for (String s : new String[] {"training", "test"}) {
                if (findDir(root, s) != null) {
                    splitDirs.add(findDir(root, s));
                }
            }
        } else if (split.equals("training") || split.equals("test")) {
            splitDirs.add(requireDir(root, split, "DRIVE"));
        } else {
            throw new IllegalArgumentException("DRIVE split must be training, test or all, got '" + o.split() + "'");
        }
        if (splitDirs.isEmpty()) {
            throw new IOException("DRIVE: no training/ or test/ folder in " + root);
        }
        List<FileSamples.Entry> entries = new ArrayList<>();
        String manual = o.annotator() == 1 ? "1st_manual" : "2nd_manual";
        for (Path dir : splitDirs) {
            Path images = requireDir(dir, "images", "DRIVE");
            Path labels = requireDir(dir, manual, "DRIVE");
            Path fovDir = findDir(dir, "mask");
            Stems labelFiles = new Stems(labels);
            Stems fov = fovDir == null ? null : new Stems(fovDir);
            for (Path img : matching(images, DRIVE_IMAGE)) {
                Matcher m = DRIVE_IMAGE.matcher(img.getFileName().toString());
                m.matches();
                String nn = m.group(1), sp = m.group(2).toLowerCase(Locale.ROOT);
                Path label = labelFiles.get(nn + "_manual" + o.annotator());
                Path f = fov == null ? null : fov.get(nn + "_" + sp + "_mask");
                entries.add(new FileSamples.Entry(nn + "_" + sp, img, label, f));
            }
        }
        if (entries.isEmpty()) {
            throw new IOException("DRIVE: no NN_training.tif / NN_test.tif images under " + splitDirs);
        }
        return new FileSamples("DRIVE " + split + " (" + manual + ")", entries, o.text(), o.estimateFov());
    }

    // ---- CHASE_DB1 -------------------------------------------------------------------------------------------

    private static final Pattern CHASE_IMAGE = Pattern.compile("Image_(\\d+[LR])\\.jpe?g", Pattern.CASE_INSENSITIVE);

    public static FileSamples chaseDb1(Path root, Options o) throws IOException {
        List<FileSamples.Entry> entries = new ArrayList<>();
        String suffix = o.annotator() == 1 ? "_1stHO" : "_2ndHO";
        Map<Path, Stems> folders = new TreeMap<>();
        for (Path img : walk(root, CHASE_IMAGE)) {
            Matcher m = CHASE_IMAGE.matcher(img.getFileName().toString());
            m.matches();
            String id = "Image_" + m.group(1).toUpperCase(Locale.ROOT);
            Stems here = folders.get(img.getParent());
            if (here == null) {
                here = new Stems(img.getParent());
                folders.put(img.getParent(), here);
            }
            entries.add(new FileSamples.Entry(id, img, here.get(id + suffix), null));
        }
        if (entries.isEmpty()) {
            throw new IOException("CHASE_DB1: no Image_NN[LR].jpg files in " + root + " (or one folder below)");
        }
        return new FileSamples("CHASE_DB1 (" + suffix.substring(1) + ")", entries, o.text(), o.estimateFov());
    }

    // ---- STARE -----------------------------------------------------------------------------------------------

    private static final Pattern STARE_IMAGE = Pattern.compile("(im\\d{4})\\.ppm(\\.gz)?", Pattern.CASE_INSENSITIVE);

    public static FileSamples stare(Path root, Options o) throws IOException {
        String who = o.annotator() == 1 ? "ah" : "vk";
        Pattern label = Pattern.compile("(im\\d{4})\\." + who + "\\.ppm(\\.gz)?", Pattern.CASE_INSENSITIVE);
        Map<String, Path> labels = new TreeMap<>();
        for (Path p : walk(root, label)) {
            Matcher m = label.matcher(p.getFileName().toString());
            m.matches();
            labels.putIfAbsent(m.group(1).toLowerCase(Locale.ROOT), p);
        }
        List<FileSamples.Entry> entries = new ArrayList<>();
        int unlabelled = 0;
        for (Path img : walk(root, STARE_IMAGE)) {
            Matcher m = STARE_IMAGE.matcher(img.getFileName().toString());
            m.matches();
            String id = m.group(1).toLowerCase(Locale.ROOT);
            Path l = labels.get(id);
            if (l == null) {
                unlabelled++; // STARE ships 400 images, 20 of them with vessel labels
                continue;
            }
            entries.add(new FileSamples.Entry(id, img, l, null));
        }
        if (entries.isEmpty()) {
            throw new IOException("STARE: no imNNNN.ppm[.gz] image with a matching imNNNN." + who + ".ppm[.gz] label "
                    + "under " + root + " (" + unlabelled + " unlabelled images, " + labels.size() + " labels found)");
        }
        return new FileSamples("STARE (labels-" + who + ")", entries, o.text(), o.estimateFov());
    }

    // ---- HRF -------------------------------------------------------------------------------------------------

    private static final Pattern HRF_IMAGE = Pattern.compile("(\\d+_(?:h|g|dr))\\.(jpe?g|tiff?|png)",
            Pattern.CASE_INSENSITIVE);

    public static FileSamples hrf(Path root, Options o) throws IOException {
        Path images = requireDir(root, "images", "HRF");
        Stems manual = new Stems(requireDir(root, "manual1", "HRF"));
        Path fovDir = findDir(root, "mask");
        Stems fov = fovDir == null ? null : new Stems(fovDir);
        List<FileSamples.Entry> entries = new ArrayList<>();
        for (Path img : matching(images, HRF_IMAGE)) {
            Matcher m = HRF_IMAGE.matcher(img.getFileName().toString());
            m.matches();
            String id = m.group(1).toLowerCase(Locale.ROOT);
            entries.add(new FileSamples.Entry(id, img, manual.get(id), fov == null ? null : fov.get(id + "_mask")));
        }
        if (entries.isEmpty()) {
            throw new IOException("HRF: no NN_h / NN_g / NN_dr images in " + images);
        }
        return new FileSamples("HRF", entries, o.text(), o.estimateFov());
    }

    // ---- FIVES -----------------------------------------------------------------------------------------------

    public static FileSamples fives(Path root, Options o) throws IOException {
        String split = o.split() == null ? "test" : o.split().toLowerCase(Locale.ROOT);
        List<Path> dirs = new ArrayList<>();
        if (findDir(root, "original") != null) {
            dirs.add(root);
        } else if (split.equals("all")) {
            for (String s : new String[] {"train", "test"}) {
                if (findDir(root, s) != null) {
                    dirs.add(findDir(root, s));
                }
            }
        } else if (split.equals("train") || split.equals("test")) {
            dirs.add(requireDir(root, split, "FIVES"));
        } else {
            throw new IllegalArgumentException("FIVES split must be train, test or all, got '" + o.split() + "'");
        }
        List<FileSamples.Entry> entries = new ArrayList<>();
        for (Path d : dirs) {
            Path orig = requireDir(d, "original", "FIVES");
            Path gt = findDir(d, "ground truth");
            if (gt == null) {
                gt = findDir(d, "groundtruth");
            }
            if (gt == null) {
                throw new IOException("FIVES: no 'Ground truth' folder in " + d);
            }
            String prefix = d.equals(root) ? "" : d.getFileName().toString() + "_";
            Stems truth = new Stems(gt);
            for (Path img : imagesIn(orig)) {
                String stem = stem(img);
                entries.add(new FileSamples.Entry(prefix + stem, img, truth.get(stem), null));
            }
        }
        if (entries.isEmpty()) {
            throw new IOException("FIVES: no images under " + dirs);
        }
        return new FileSamples("FIVES " + split, entries, o.text(), o.estimateFov());
    }

    // ---- image / mask folders --------------------------------------------------------------------------------

    public static FileSamples folders(Path root, Options o) throws IOException {
        Path images = requireDir(root, "images", "folder layout");
        Stems masks = new Stems(requireDir(root, "masks", "folder layout"));
        Path fovDir = findDir(root, "fov");
        Stems fov = fovDir == null ? null : new Stems(fovDir);
        List<FileSamples.Entry> entries = new ArrayList<>();
        for (Path img : imagesIn(images)) {
            String stem = stem(img);
            entries.add(new FileSamples.Entry(stem, img, masks.get(stem), fov == null ? null : fov.get(stem)));
        }
        if (entries.isEmpty()) {
            throw new IOException("no images in " + images);
        }
        return new FileSamples(root.getFileName() + " (images/ + masks/)", entries, o.text(), o.estimateFov());
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private static final Pattern IMAGE_EXT = Pattern.compile(".*\\.(png|jpe?g|tiff?|gif|bmp|ppm|pgm)(\\.gz)?",
            Pattern.CASE_INSENSITIVE);

    /** A sub-folder of {@code parent} whose name equals {@code name} ignoring case, or null. */
    static Path findDir(Path parent, String name) throws IOException {
        if (!Files.isDirectory(parent)) {
            return null;
        }
        try (Stream<Path> s = Files.list(parent)) {
            return s.filter(Files::isDirectory).filter(p -> p.getFileName().toString().equalsIgnoreCase(name))
                    .sorted().findFirst().orElse(null);
        }
    }

    private static Path requireDir(Path parent, String name, String dataset) throws IOException {
        Path d = findDir(parent, name);
        if (d == null) {
            throw new IOException(dataset + ": no folder '" + name + "' in " + parent);
        }
        return d;
    }

    /** Files of {@code dir} whose whole name matches {@code p}, sorted by name. */
    private static List<Path> matching(Path dir, Pattern p) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(Files::isRegularFile).filter(f -> p.matcher(f.getFileName().toString()).matches())
                    .sorted(Comparator.comparing(f -> f.getFileName().toString())).toList();
        }
    }

    /** Like {@link #matching} over {@code root} and the folders up to two levels below it. */
    private static List<Path> walk(Path root, Pattern p) throws IOException {
        try (Stream<Path> s = Files.walk(root, 3)) {
            return s.filter(Files::isRegularFile).filter(f -> p.matcher(f.getFileName().toString()).matches())
                    .sorted(Comparator.comparing((Path f) -> f.getFileName().toString()).thenComparing(Path::toString))
                    .toList();
        }
    }

    private static List<Path> imagesIn(Path dir) throws IOException {
        return matching(dir, IMAGE_EXT);
    }

    /** File name without its image extension (and .gz). */
    static String stem(Path f) {
        String n = f.getFileName().toString();
        if (n.toLowerCase(Locale.ROOT).endsWith(".gz")) {
            n = n.substring(0, n.length() - 3);
        }
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    /** Image files of {@code dir} by lower-cased stem, listed once per folder. */
    private static final class Stems {
        private final Path dir;
        private final Map<String, Path> byStem = new TreeMap<>();

        Stems(Path dir) throws IOException {
            this.dir = dir;
            for (Path f : imagesIn(dir)) {
                byStem.putIfAbsent(stem(f).toLowerCase(Locale.ROOT), f);
            }
        }

        /**
         * The file named {@code stem} + an image extension; when there is none, {@code dir/stem.*}, so that loading
         * that sample fails naming what was looked for.
         */
        Path get(String stem) {
            Path f = byStem.get(stem.toLowerCase(Locale.ROOT));
            return f != null ? f : dir.resolve(stem + ".*");
        }
    }
}
