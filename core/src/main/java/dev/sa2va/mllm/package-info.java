/**
 * Sa2VA's multimodal LLM on libtorch: the path from an image and a question to answer tokens and the [SEG]
 * embeddings that prompt SAM2.
 *
 * <pre>{@code
 * try (Sa2vaMllm m = MllmWeights.load(dir, ScalarType.BFloat16, Devices.best());
 *      Tokenizer tok = Tokenizer.load(dir)) {
 *     DynamicTiling.Tiles tiles = new DynamicTiling(m.config().vision().imageSize()).tiles(image);
 *     ChatTemplate t = ChatTemplate.byName(m.config().template());
 *     String prompt = t.prompt("<image>\n Please segment the blood vessels in this image.",
 *                              tiles.count() * m.config().tokensPerTile());
 *     long[] promptIds = tok.encode(prompt);
 *     Tensor ids = Torch.fromLongs(promptIds, promptIds.length);
 *     Tensor embeds = m.inputsEmbeds(ids, m.imageFeatures(tiles.pixelValues(), Probe.NONE),
 *                                    tok.id(ChatTemplate.IMG_CONTEXT));
 *     Generator.Result r = Generator.greedy(m.llm(), embeds,
 *             new Generator.Options(2048, new long[] {tok.id("<|im_end|>")}, t.stopWords(),
 *                                   tok.id(ChatTemplate.SEG), false),
 *             ids -> tok.decode(ids, false));
 *     String answer = tok.decode(r.tokens(), false);     // e.g. "Sure, [SEG].<|im_end|>"
 *     Tensor promptEmbeddings = m.seg().embed(r.segHidden());   // [nSeg, 256] for SAM2
 * }
 * }</pre>
 *
 * Semantics follow Sa2VA's HF code (see ../shared/docs/sa2va-reference.md §1–§2); the tests compare every stage
 * with HF transformers on identical weights (core/verification/mllm).
 */
package dev.sa2va.mllm;
