#!/usr/bin/env python3
"""PyTorch baselines for the RL kernel benchmarks (RewardBench, GaeBench, PpoBench), on the same card and sizes.

    python3 benchmarks/python/rl_baselines.py --out rl-baselines.json

What is timed (each: warm-up, then `reps` calls and one torch.cuda.synchronize(), per call, as the JMH benchmarks):
  dice/plain3        thresholded logits vs uint8 targets: three reductions (TP, sum pred, sum target) -> Dice
  dice/torchmetrics_style  the same the way torchmetrics' dice computes it (float products, safe divide)
  dice/torchmetrics  torchmetrics.functional.segmentation.dice_score itself (if its API accepts the call)
  dice/soft3         the soft sums (sigmoid) and soft Dice with three reductions
  sample/torch       Bernoulli(sigmoid(z)) sample, log-prob and entropy sums, Dice of each sample vs its target
  gae/cleanrl_loop   CleanRL ppo.py's reverse loop over T on GPU tensors
  ppo/cleanrl_ops    CleanRL ppo.py's loss in torch ops, forward + backward (grads of logp, value, entropy)
  ppo/trl_grpo_ops   TRL GRPOTrainer's loss (clip, k3 KL, masked token mean), forward + backward
  copy               dst.copy_(src) of the bytes named, the card's yardstick
"""
import argparse
import json
import statistics
import time

import torch


def timed(fn, reps, iters=3, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(iters):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        per_call.append((time.perf_counter() - t0) / reps * 1e6)
    return statistics.median(per_call), min(per_call)


def shape(s):
    return tuple(int(x) for x in s.split("x"))


def copy_bench(nbytes, dev, reps=20):
    n = max(1, nbytes // 4)
    src = torch.rand(n, device=dev)
    dst = torch.empty_like(src)
    return timed(lambda: dst.copy_(src), reps)


def dice_benches(dev, sizes, results):
    for size in sizes:
        n, p = shape(size)
        g = torch.Generator(device=dev).manual_seed(0)
        z = torch.randn(n, p, device=dev, generator=g).to(torch.bfloat16)
        y = (torch.rand(n, p, device=dev, generator=g) < 0.1).to(torch.uint8)
        nbytes = n * p * 3

        def plain3():
            pred = z > 0
            t = y != 0
            tp = (pred & t).sum(1)
            return 2 * tp / (pred.sum(1) + t.sum(1))

        def tm_style():
            preds = (z > 0).float()
            target = y.float()
            inter = torch.sum(preds * target, dim=1)
            ts = torch.sum(target, dim=1)
            ps = torch.sum(preds, dim=1)
            den = ts + ps
            return torch.where(den != 0, 2 * inter / den.clamp(min=1e-12), torch.full_like(den, float("nan")))

        def soft3():
            pr = z.float().sigmoid()
            t = y.float()
            spy = (pr * t).sum(1)
            return 2 * spy / (pr.sum(1) + t.sum(1))

        for name, fn in (("plain3", plain3), ("torchmetrics_style", tm_style), ("soft3", soft3)):
            med, best = timed(fn, 20)
            results.append(dict(group="dice", name=name, size=size, us=med, us_min=best, bytes=nbytes))
        try:
            from torchmetrics.functional.segmentation import dice_score
            preds = (z > 0).view(n, 1, p)
            target = y.bool().view(n, 1, p)
            dice_score(preds, target, num_classes=1, average="micro", input_format="one-hot")
            med, best = timed(lambda: dice_score(preds, target, num_classes=1, average="micro", input_format="one-hot"), 20)
            results.append(dict(group="dice", name="torchmetrics", size=size, us=med, us_min=best, bytes=nbytes))
        except Exception as e:  # the API moved between versions: record why, keep going
            results.append(dict(group="dice", name="torchmetrics", size=size, error=repr(e)[:300]))

        def sample_score():
            x = z.float()
            u = torch.rand(x.shape, device=dev)
            pr = torch.sigmoid(x)
            m = u < pr
            ls = torch.nn.functional.logsigmoid
            logp = torch.where(m, ls(x), ls(-x)).sum(1)
            ent = (-(pr * ls(x) + (1 - pr) * ls(-x))).sum(1)
            t = y != 0
            tp = (m & t).sum(1)
            return 2 * tp / (m.sum(1) + t.sum(1)), logp, ent

        med, best = timed(sample_score, 10)
        results.append(dict(group="sample", name="torch", size=size, us=med, us_min=best, bytes=n * p * 3))
        med, best = copy_bench(nbytes, dev)
        results.append(dict(group="dice", name="copy", size=size, us=med, us_min=best, bytes=nbytes))


def gae_cleanrl(rewards, values, dones, next_value, next_done, gamma=0.99, gae_lambda=0.95):
    # CleanRL ppo.py (vwxyzjn/cleanrl), the advantage loop as written there
    num_steps = rewards.shape[0]
    with torch.no_grad():
        advantages = torch.zeros_like(rewards)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values
    return advantages, returns


def gae_benches(dev, sizes, results):
    for size in sizes:
        t, n = shape(size)
        r = torch.randn(t, n, device=dev)
        v = torch.randn(t, n, device=dev)
        d = (torch.rand(t, n, device=dev) < 0.01).float()
        nv = torch.randn(n, device=dev)
        nd = torch.zeros(n, device=dev)
        reps = 3 if t >= 1024 else 10
        med, best = timed(lambda: gae_cleanrl(r, v, d, nv, nd), reps, iters=2, warmup=1)
        results.append(dict(group="gae", name="cleanrl_loop", size=size, us=med, us_min=best, bytes=t * n * 17))
        med, best = copy_bench(t * n * 17 // 2, dev)
        results.append(dict(group="gae", name="copy", size=size, us=med, us_min=best, bytes=t * n * 17))


def ppo_cleanrl_ops(logp, old, adv, value, old_value, ret, entropy, clip=0.2, vf_coef=0.5, ent_coef=0.01):
    # CleanRL ppo.py minibatch loss (norm_adv, clip_vloss), plus its logged diagnostics
    logratio = logp - old
    ratio = logratio.exp()
    with torch.no_grad():
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip).float().mean()
    mb_adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss1 = -mb_adv * ratio
    pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - clip, 1 + clip)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    v_loss_unclipped = (value - ret) ** 2
    v_clipped = old_value + torch.clamp(value - old_value, -clip, clip)
    v_loss_clipped = (v_clipped - ret) ** 2
    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
    loss.backward()
    return loss, old_approx_kl, approx_kl, clipfrac


def ppo_trl_ops(logp, old, ref, adv, mask, eps_low=0.2, eps_high=0.2, beta=0.04):
    # TRL GRPOTrainer._compute_loss (token-level importance sampling, loss_type "bnpo"/"dapo" in one process)
    per_token_kl = torch.exp(ref - logp) - (ref - logp) - 1
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    per_token_loss1 = coef_1 * adv.unsqueeze(1)
    per_token_loss2 = coef_2 * adv.unsqueeze(1)
    per_token_loss = -torch.min(per_token_loss1, per_token_loss2) + beta * per_token_kl
    loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    with torch.no_grad():
        is_low = (coef_1 < 1 - eps_low) & (adv.unsqueeze(1) < 0)
        is_high = (coef_1 > 1 + eps_high) & (adv.unsqueeze(1) > 0)
        clip_ratio = ((is_low | is_high) * mask).sum() / mask.sum()
        mean_kl = (per_token_kl * mask).sum() / mask.sum()
    loss.backward()
    return loss, clip_ratio, mean_kl


def ppo_benches(dev, sizes, results):
    for size in sizes:
        b, l = shape(size)
        g = torch.Generator(device=dev).manual_seed(0)
        base = torch.randn(b, l, device=dev, generator=g) - 2
        logp = base.clone().requires_grad_(True)
        old = base + 0.1 * torch.randn(b, l, device=dev, generator=g)
        adv = torch.randn(b, l, device=dev, generator=g)
        value = torch.randn(b, l, device=dev, generator=g).requires_grad_(True)
        old_value = torch.randn(b, l, device=dev, generator=g)
        ret = torch.randn(b, l, device=dev, generator=g)
        entropy = torch.rand(b, l, device=dev, generator=g).requires_grad_(True)

        def cleanrl():
            logp.grad = value.grad = entropy.grad = None
            return ppo_cleanrl_ops(logp, old, adv, value, old_value, ret, entropy)

        med, best = timed(cleanrl, 10)
        results.append(dict(group="ppo", name="cleanrl_ops", size=size, us=med, us_min=best, bytes=b * l * 40))
        del value, old_value, ret, entropy
        ref = base + 0.1 * torch.randn(b, l, device=dev, generator=g)
        radv = torch.randn(b, device=dev, generator=g)
        mask = (torch.rand(b, l, device=dev, generator=g) < 0.9).to(torch.uint8)

        def trl():
            logp.grad = None
            return ppo_trl_ops(logp, old, ref, radv, mask)

        med, best = timed(trl, 10)
        results.append(dict(group="ppo", name="trl_grpo_ops", size=size, us=med, us_min=best, bytes=b * l * 17))
        for cfg, bpt in (("cleanrl", 40), ("grpo", 17)):
            med, best = copy_bench(b * l * bpt // 2, dev)
            results.append(dict(group="ppo", name="copy_" + cfg, size=size, us=med, us_min=best, bytes=b * l * bpt))
        del logp, old, adv, ref, radv, mask, base
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reward-sizes", default="8x262144,16x262144,32x1048576")
    ap.add_argument("--gae-sizes", default="128x8,2048x16,32x4096,1024x512,1024x1024,2048x32768")
    ap.add_argument("--ppo-sizes", default="256x4096,4096x4096,8192x4096")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("CUDA is not available")
    dev = torch.device("cuda:0")
    torch.backends.cuda.matmul.allow_tf32 = False
    results = []
    t0 = time.time()
    dice_benches(dev, args.reward_sizes.split(","), results)
    gae_benches(dev, args.gae_sizes.split(","), results)
    ppo_benches(dev, args.ppo_sizes.split(","), results)
    info = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda,
                seconds=round(time.time() - t0, 1))
    try:
        import torchmetrics
        info["torchmetrics"] = torchmetrics.__version__
    except Exception:
        pass
    with open(args.out, "w") as f:
        json.dump(dict(info=info, results=results), f, indent=1)
    for r in results:
        if "us" in r:
            gbs = r["bytes"] / r["us"] / 1e3
            print(f"{r['group']:7s} {r['name']:20s} {r['size']:12s} {r['us']:12.1f} us  {gbs:8.0f} GB/s")
        else:
            print(f"{r['group']:7s} {r['name']:20s} {r['size']:12s} error: {r.get('error')}")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
