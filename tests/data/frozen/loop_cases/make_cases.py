#!/usr/bin/env python
"""Generate the frozen feedback-loop evaluation set (``cases.json`` + Parquet logs).

Every synthetic case is produced by *simulating a mechanism* -- a logging policy that
retrains on its own clicks, a Thompson-sampling bandit, an epsilon-greedy policy with a
real exploration slice, a personalised model, a seasonal catalogue, ... -- against items
whose true click (or purchase, open, ...) probabilities are drawn at random.  The label of
each case follows from the mechanism and from recommender-systems judgement, never from a
statistic computed on the output.  The Open Bandit cases are conversions of the real
ZOZOTOWN sample (CC BY 4.0, ZOZO, Inc.; Saito et al. 2021), read from ``shared/data/obd``.

Deterministic: every case has its own fixed seed.  Run with the project's Python:

    python tests/data/loop_cases/make_cases.py

The set is frozen.  Never change a seed, a parameter or a label to make a detector pass;
regenerate only by running this script unchanged.
"""
from __future__ import annotations

import json
import os
import pathlib
import string
import sys
import time

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).resolve().parent
DAY = 86400.0
HOUR = 3600.0


def _obd_dir() -> pathlib.Path | None:
    cands = []
    if os.environ.get("FAILWELL_OBD_DIR"):
        cands.append(pathlib.Path(os.environ["FAILWELL_OBD_DIR"]))
    for up in HERE.parents:
        cands.append(up / "shared" / "data" / "obd")
    for c in cands:
        if (c / "bts" / "all.csv").exists() and (c / "random" / "all.csv").exists():
            return c
    return None


# --------------------------------------------------------------------------- helpers

def epoch(day: str) -> float:
    return pd.Timestamp(day, tz="UTC").timestamp()


def event_times(rng, n, start, days):
    """n sorted event times (epoch seconds) over `days` days with an evening peak."""
    day = rng.integers(0, days, n)
    hour = np.where(rng.random(n) < 0.35, rng.uniform(0, 24, n), rng.normal(20.0, 3.5, n) % 24)
    return np.sort(start + day * DAY + hour * HOUR)


def spans(t, t0, period):
    """(start, stop) row ranges of consecutive retraining periods (t sorted)."""
    per = np.floor((t - t0) / period).astype(np.int64)
    cuts = np.flatnonzero(np.diff(per)) + 1
    edges = np.concatenate([[0], cuts, [len(t)]])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def draw(rng, P, m):
    c = np.cumsum(P)
    c = c / c[-1]
    return np.minimum(np.searchsorted(c, rng.random(m), side="right"), len(P) - 1)


def lognorm(rng, mean, sigma, n):
    """Positive values whose median is `mean`."""
    return mean * np.exp(rng.normal(0.0, sigma, n))


def user_pool(rng, n_rows, n_users):
    w = np.exp(rng.normal(0, 1.0, n_users))
    return draw(rng, w / w.sum(), n_rows)


def fmt_time(t, kind):
    dt = pd.Series(pd.to_datetime(np.asarray(t) * 1e9, unit="ns", utc=True))
    if kind == "epoch_s":
        return np.floor(t).astype(np.int64)
    if kind == "epoch_float":
        return np.round(t, 3)
    if kind == "native_utc":
        return dt.dt.floor("s")
    if kind == "native_naive":
        return dt.dt.tz_localize(None).dt.floor("s")
    if kind == "iso_z":
        return dt.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "iso_ms_z":
        return dt.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    if kind == "iso_space":
        return dt.dt.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "iso_t_naive":
        return dt.dt.strftime("%Y-%m-%dT%H:%M:%S")
    if kind == "iso_tokyo":
        s = dt.dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        return s.str[:-2] + ":" + s.str[-2:]
    if kind == "iso_pandas":  # like the Open Bandit CSVs: 2019-11-24 00:00:17.004101+00:00
        return dt.dt.floor("us").astype(str)
    raise ValueError(kind)


def ids(rng, n, kind):
    if kind == "int":
        return np.arange(1, n + 1)
    if kind == "bigint":
        return rng.choice(np.arange(10_000_000, 99_999_999), n, replace=False).astype(np.int64)
    if kind.startswith("fmt:"):
        pat = kind[4:]
        nums = rng.choice(np.arange(10 ** 5), n, replace=False)
        return np.array([pat % k for k in nums])
    if kind == "youtube":
        al = np.array(list(string.ascii_letters + string.digits + "-_"))
        return np.array(["".join(x) for x in rng.choice(al, (n, 11))])
    if kind == "asin":
        al = np.array(list(string.ascii_uppercase + string.digits))
        return np.array(["B0" + "".join(x) for x in rng.choice(al, (n, 8))])
    raise ValueError(kind)


def frame(rng, t, items, reward, names, *, tfmt, item_ids, prop=None, user=None,
          guard=None, extra=None, reward_dtype="int8", shuffle=False):
    """Build a log table with a team's own column names."""
    d = {names["time"]: fmt_time(t, tfmt), names["item"]: item_ids[items]}
    if reward_dtype == "bool":
        d[names["reward"]] = reward.astype(bool)
    else:
        d[names["reward"]] = reward.astype(reward_dtype)
    if names.get("propensity") and prop is not None:
        # logged at single precision, as many serving stacks do
        d[names["propensity"]] = np.asarray(prop, dtype=np.float32).astype(float)
    if names.get("user") and user is not None:
        d[names["user"]] = user
    if names.get("guardrail") and guard is not None:
        d[names["guardrail"]] = guard
    if extra:
        d.update(extra)
    df = pd.DataFrame({k: (v.array if isinstance(v, pd.Series) else v) for k, v in d.items()})
    if shuffle:
        df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    return df


def cols(item, reward, time_, propensity=None, user=None, guardrail=None):
    return {"item": item, "reward": reward, "time": time_, "propensity": propensity,
            "user": user, "guardrail": guardrail}


# --------------------------------------------------------------------------- policies

class Popularity:
    """Show items in proportion to (own past clicks + smooth) ** beta; retrained on own logs."""

    def __init__(self, n, beta, smooth, eps, init=None):
        self.n, self.beta, self.smooth, self.eps = n, beta, smooth, eps
        self.c = np.zeros(n) if init is None else np.asarray(init, float).copy()

    def dist(self, rng):
        w = (self.c + self.smooth) ** self.beta
        return (1 - self.eps) * w / w.sum() + self.eps / self.n

    def update(self, it, r):
        self.c += np.bincount(it[r], minlength=self.n)


class BatchTS:
    """Bernoulli Thompson sampling, posteriors refreshed once per batch; the propensity of
    each arm is the Monte-Carlo probability that it wins the posterior draw (as in OBP)."""

    def __init__(self, n, a0, b0, n_mc=4000, clicks=None, imps=None):
        self.n, self.a0, self.b0, self.n_mc = n, a0, b0, n_mc
        self.clk = np.zeros(n) if clicks is None else np.asarray(clicks, float).copy()
        self.imp = np.zeros(n) if imps is None else np.asarray(imps, float).copy()

    def dist(self, rng):
        S = rng.beta(self.a0 + self.clk, self.b0 + self.imp - self.clk, size=(self.n_mc, self.n))
        return np.bincount(S.argmax(1), minlength=self.n) / self.n_mc

    def update(self, it, r):
        self.imp += np.bincount(it, minlength=self.n)
        self.clk += np.bincount(it[r], minlength=self.n)


class Fixed:
    def __init__(self, P):
        self.P = np.asarray(P, float) / np.sum(P)

    def dist(self, rng):
        return self.P

    def update(self, it, r):
        pass


def run_policy(rng, t, period, policy, click_p, t0=None):
    """Serve one item per row; retrain `policy` on its own rows at the end of each period."""
    n = len(t)
    items = np.empty(n, np.int64)
    prop = np.empty(n)
    rew = np.zeros(n, bool)
    for a, b in spans(t, t[0] if t0 is None else t0, period):
        P = policy.dist(rng)
        it = draw(rng, P, b - a)
        r = rng.random(b - a) < click_p(it, a, b)
        policy.update(it, r)
        items[a:b], prop[a:b], rew[a:b] = it, P[it], r
    return items, prop, rew


def const_ctr(ctr):
    return lambda it, a, b: ctr[it]


def uniform_ref(rng, t, n, click_p):
    it = rng.integers(0, n, len(t))
    r = rng.random(len(t)) < click_p(it, 0, len(t))
    return it, np.full(len(t), 1.0 / n), r


def eps_greedy(rng, t, period, n, k, eps, click_p, by, a0=1.0, b0=30.0):
    """Epsilon-greedy that refreshes its top-k once a period from *all* its rows.  Returns
    exploit rows and explore rows (the exploration slice) separately."""
    N = len(t)
    items = np.empty(N, np.int64)
    prop = np.empty(N)
    rew = np.zeros(N, bool)
    explore = rng.random(N) < eps
    imp = np.zeros(n)
    clk = np.zeros(n)
    for a, b in spans(t, t[0], period):
        if by == "ctr":
            score = (clk + a0) / (imp + a0 + b0)
        else:  # raw click count -- the bug
            score = clk.copy()
        score = score + rng.random(n) * 1e-9
        top = np.argsort(-score)[:k]
        P = np.full(n, eps / n)
        P[top] += (1 - eps) / k
        m = b - a
        ex = explore[a:b]
        it = np.where(ex, rng.integers(0, n, m), top[rng.integers(0, k, m)])
        r = rng.random(m) < click_p(it, a, b)
        imp += np.bincount(it, minlength=n)
        clk += np.bincount(it[r], minlength=n)
        items[a:b], prop[a:b], rew[a:b] = it, P[it], r
    return (items, prop, rew), explore


def dwell(rng, med_item, items, clicked, sigma=0.7, factor=None):
    x = med_item[items] * np.exp(rng.normal(0, sigma, len(items)))
    if factor is not None:
        x = x * factor
    return np.where(clicked, np.round(x, 1), np.nan)


def returned(rng, rate_item, items, bought):
    r = (rng.random(len(items)) < rate_item[items]).astype(float)
    return pd.array(np.where(bought, r, np.nan), dtype="Int8")


def segment_world(rng, n, n_seg, liked, liked_ctr, base_ctr, sig=0.25):
    """True click probability per (taste segment, item): each segment likes a few items."""
    ctr = lognorm(rng, base_ctr, sig, n_seg * n).reshape(n_seg, n)
    for s in range(n_seg):
        fav = rng.choice(n, liked, replace=False)
        ctr[s, fav] = lognorm(rng, liked_ctr, 0.2, liked)
    return np.minimum(ctr, 0.9)


def segment_softmax(rng, true_ctr, noise, temp, eps):
    """A personalised model trained elsewhere: softmax over noisy log-CTR scores per segment."""
    score = np.log(true_ctr) + rng.normal(0, noise, true_ctr.shape)
    z = (score - score.max(1, keepdims=True)) / temp
    P = np.exp(z)
    P /= P.sum(1, keepdims=True)
    return (1 - eps) * P + eps / true_ctr.shape[1]


def serve_segments(rng, seg, P):
    items = np.empty(len(seg), np.int64)
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        items[idx] = draw(rng, P[s], len(idx))
    return items, P[seg, items]


# --------------------------------------------------------------------------- cases

CASES = []


def case(cid, seed):
    def deco(fn):
        CASES.append((cid, seed, fn))
        return fn
    return deco


# ---- feedback loops -----------------------------------------------------------------

@case("pop-retrain-fashion", 101)
def _(rng):
    n, N, R, days = 300, 60_000, 9_000, 30
    start = epoch("2024-03-04")
    ctr = lognorm(rng, 0.03, 0.08, n)
    iid = ids(rng, n, "fmt:P%05d")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.4, 1.0, 0.02), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("product_id", "clicked", "event_time", "pscore", "user_id")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 8000), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 8000), **kw),
        columns=c, expected="feedback-loop",
        why="A 'trending' ranker retrained every night on its own click counts over 300 "
            "products of near-identical appeal: exposure snowballs onto early lucky items "
            "while the click rate stays at the random slice's level.")


@case("pop-retrain-no-ref-longrun", 102)
def _(rng):
    n, N, days = 1000, 120_000, 120
    start = epoch("2023-09-01")
    ctr = lognorm(rng, 0.02, 0.08, n)
    iid = ids(rng, n, "fmt:SKU-%06d")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, 7 * DAY, Popularity(n, 1.6, 0.5, 0.01), const_ctr(ctr), t0=start)
    c = cols("sku", "purchase", "served_at", "logging_prob")
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, tfmt="epoch_s", item_ids=iid),
        ref=None, columns=c, expected="feedback-loop",
        why="Four months of a best-seller list rebuilt weekly from its own purchases over "
            "1,000 equally good SKUs: exposure narrows week after week while the purchase "
            "rate stays flat; no exploration slice, but the trend inside the log is plain.")


@case("ts-position-bias", 103)
def _(rng):
    n, pv, pv_ref, days = 40, 27_000, 5_000, 14
    bias = np.array([1.0, 0.55, 0.35])
    start = epoch("2024-05-13")
    rel = lognorm(rng, 0.03, 0.05, n)
    iid = ids(rng, n, "int") - 1
    t = event_times(rng, pv, start, days)
    clk = np.zeros(n)
    imp = np.zeros(n)
    items = np.empty((pv, 3), np.int64)
    prop = np.empty((pv, 3))
    rewards = np.zeros((pv, 3), bool)
    for a, b in spans(t, start, 6 * HOUR):
        m = b - a
        M = max(6000, m)
        S = rng.beta(1 + clk, 40 + imp - clk, size=(M, n))
        top3 = np.argsort(-S, axis=1)[:, :3]
        freq = np.stack([np.bincount(top3[:, j], minlength=n) / M for j in range(3)], 1)
        sel = top3[:m]
        items[a:b] = sel
        prop[a:b] = freq[sel, np.arange(3)[None, :]]
        click = rng.random((m, 3)) < rel[sel] * bias[None, :]
        # the bandit counts clicks per item without correcting for position
        imp += np.bincount(sel.ravel(), minlength=n)
        clk += np.bincount(sel.ravel()[click.ravel()], minlength=n)
        rewards[a:b] = click
    tr = event_times(rng, pv_ref, start, days)
    ref_items = np.stack([rng.permutation(n)[:3] for _ in range(pv_ref)])
    ref_rew = rng.random((pv_ref, 3)) < rel[ref_items] * bias[None, :]
    c = cols("item_id", "click", "timestamp", "propensity_score")
    pos = np.tile(np.arange(1, 4), pv)
    pos_r = np.tile(np.arange(1, 4), pv_ref)
    tt = np.repeat(t, 3)
    ttr = np.repeat(tr, 3)
    return dict(
        logs=frame(rng, tt, items.ravel(), rewards.ravel(), c, prop=prop.ravel(),
                   tfmt="iso_pandas", item_ids=iid, extra={"position": pos.astype(np.int8)}),
        ref=frame(rng, ttr, ref_items.ravel(), ref_rew.ravel(), c, prop=np.full(3 * pv_ref, 1 / n),
                  tfmt="iso_pandas", item_ids=iid, extra={"position": pos_r.astype(np.int8)}),
        columns=c, expected="feedback-loop",
        why="A Thompson-sampling carousel that credits position-1 clicks to the item itself: "
            "whatever lands in the top slot looks better and keeps it, so one of 40 equally "
            "relevant items holds slot 1 most of the time, with no click-rate gain over random.")


@case("clickbait-dwell", 104)
def _(rng):
    n, nb, N, R, days = 500, 40, 100_000, 15_000, 21
    start = epoch("2024-01-08")
    ctr = lognorm(rng, 0.035, 0.25, n)
    med = lognorm(rng, 70.0, 0.25, n)
    bait = rng.choice(n, nb, replace=False)
    ctr[bait] = lognorm(rng, 0.07, 0.1, nb)
    med[bait] = lognorm(rng, 12.0, 0.2, nb)
    iid = ids(rng, n, "fmt:art_%05d")
    t = event_times(rng, N, start, days)
    (it, p, r), ex = eps_greedy(rng, t, DAY, n, 25, 0.1, const_ctr(ctr), by="ctr")
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("article", "clicked", "served_at", "logging_prob", "reader_id", "dwell_seconds")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 12_000),
                   guard=dwell(rng, med, it, r), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 12_000),
                  guard=dwell(rng, med, it2, r2), **kw),
        columns=c, expected="feedback-loop", guardrail_direction="higher_is_better",
        why="A CTR-greedy news ranker discovers 40 clickbait headlines and concentrates on "
            "them: clicks clearly rise over the random slice but reading time after a click "
            "roughly halves (clickbait readers leave after about 12 s), so the proxy is gamed.")


@case("returns-purchase", 105)
def _(rng):
    n, nl, N, R, days = 800, 50, 90_000, 13_500, 60
    start = epoch("2023-10-02")
    conv = lognorm(rng, 0.012, 0.3, n)
    ret = np.clip(rng.normal(0.15, 0.03, n), 0.02, 0.5)
    lure = rng.choice(n, nl, replace=False)
    conv[lure] = lognorm(rng, 0.04, 0.15, nl)
    ret[lure] = np.clip(rng.normal(0.6, 0.05, nl), 0.3, 0.9)
    iid = ids(rng, n, "fmt:FW23-%05d")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.3, 1.0, 0.03), const_ctr(conv), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(conv))
    c = cols("sku", "purchase", "event_time", "pscore", "customer_id", "returned")
    kw = dict(tfmt="iso_space", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 20_000),
                   guard=returned(rng, ret, it, r), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 20_000),
                  guard=returned(rng, ret, it2, r2), **kw),
        columns=c, expected="feedback-loop", guardrail_direction="lower_is_better",
        why="A best-seller feed retrained on purchases drifts onto 50 'too good to be true' "
            "listings: the purchase rate rises but more than half of those orders are sent "
            "back (returned is empty when nothing was bought), so the gain is not real.")


@case("newsletter-unsub", 106)
def _(rng):
    n, ns, N, R, days = 120, 12, 40_000, 8_000, 70
    start = epoch("2024-02-05")
    opn = lognorm(rng, 0.18, 0.15, n)
    uns = np.full(n, 0.002)
    sens = rng.choice(n, ns, replace=False)
    opn[sens] = lognorm(rng, 0.32, 0.08, ns)
    uns[sens] = 0.02
    iid = ids(rng, n, "int") + 5000
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, BatchTS(n, 1, 4), const_ctr(opn), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(opn))
    c = cols("content_id", "opened", "sent_at", "propensity", "recipient_id", "unsubscribed")
    kw = dict(tfmt="native_utc", item_ids=iid, reward_dtype="bool")
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 15_000),
                   guard=(rng.random(N) < uns[it]).astype(np.int8), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 15_000),
                  guard=(rng.random(R) < uns[it2]).astype(np.int8), **kw),
        columns=c, expected="feedback-loop", guardrail_direction="lower_is_better",
        why="A Thompson-sampling newsletter picker learns that sensational pieces get opened "
            "and sends them to almost everyone: opens go up, but unsubscribes per send roughly "
            "quadruple against the random-content holdout.")


@case("eps-greedy-clickcount-bug", 107)
def _(rng):
    n, N, days = 200, 60_000, 28
    start = epoch("2024-06-03")
    ctr = lognorm(rng, 0.04, 0.08, n)
    iid = ids(rng, n, "int")
    t = event_times(rng, N, start, days)
    (it, p, r), ex = eps_greedy(rng, t, DAY, n, 10, 0.15, const_ctr(ctr), by="count")
    c = cols("item", "reward", "ts", "prob")
    kw = dict(tfmt="iso_ms_z", item_ids=iid)
    g = ~ex
    return dict(
        logs=frame(rng, t[g], it[g], r[g], c, prop=p[g], **kw),
        ref=frame(rng, t[ex], it[ex], r[ex], c, prop=np.full(ex.sum(), 1.0 / n), **kw),
        columns=c, expected="feedback-loop",
        why="Epsilon-greedy whose greedy arm ranks items by raw click *count* instead of click "
            "rate: the ten items it shows most collect the most clicks and are never displaced; "
            "the 15 % exploration slice (the reference) clicks just as often.")


@case("marketplace-pop-5000", 108)
def _(rng):
    n, N, R, days = 5000, 200_000, 20_000, 90
    start = epoch("2023-04-03")
    ctr = lognorm(rng, 0.02, 0.1, n)
    iid = ids(rng, n, "bigint")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.5, 0.5, 0.02), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("listing_id", "converted", "impression_ts", "p_logged", "buyer_id")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 60_000), shuffle=True, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 60_000), shuffle=True, **kw),
        columns=c, expected="feedback-loop",
        why="A marketplace home feed ranked by accumulated conversions over 5,000 listings for "
            "three months: a small set of early winners takes most impressions while the "
            "conversion rate matches the uniform holdout (rows exported unsorted).")


@case("fatigue-loop", 109)
def _(rng):
    n, U, N, R, days = 150, 1500, 40_000, 6_000, 45
    start = epoch("2024-04-01")
    base = lognorm(rng, 0.05, 0.1, n)
    iid = ids(rng, n, "fmt:IC%05d")

    def fatigued(users):
        hist = np.zeros((U, n), np.int32)

        def click_p(it, a, b):
            u = users[a:b]
            key = pd.Series(u.astype(np.int64) * n + it)
            prior = hist[u, it] + key.groupby(key).cumcount().to_numpy()
            np.add.at(hist, (u, it), 1)
            return base[it] * 0.55 ** prior
        return click_p

    t = event_times(rng, N, start, days)
    u = user_pool(rng, N, U)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.3, 1.0, 0.03), fatigued(u), t0=start)
    tr = event_times(rng, R, start, days)
    ur = user_pool(rng, R, U)
    it2 = rng.integers(0, n, R)
    r2 = rng.random(R) < fatigued(ur)(it2, 0, R)
    c = cols("item_code", "tap", "logged_at", "behavior_prob", "member_id")
    kw = dict(tfmt="iso_tokyo", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=u, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / n), user=ur, **kw),
        columns=c, expected="feedback-loop",
        why="An app's 'popular now' shelf retrained daily on its own taps keeps showing the "
            "same few items to the same members, who tire of them: exposure concentrates and "
            "the tap rate ends up below the random slice's.")


@case("slow-drift-loop", 110)
def _(rng):
    n, N, R, days = 400, 80_000, 12_000, 60
    start = epoch("2023-11-06")
    ctr = lognorm(rng, 0.03, 0.08, n)
    iid = ids(rng, n, "youtube")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.0, 1.0, 0.05), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("video_id", "watched", "time", "propensity")
    kw = dict(tfmt="epoch_float", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="feedback-loop",
        why="A milder rich-get-richer loop (exposure simply proportional to past watches, 5 % "
            "exploration) over 400 similar videos: concentration creeps up over two months "
            "with no gain in watch rate over the random slice.")


@case("ref-also-concentrated-trend", 111)
def _(rng):
    n, N, R, days = 250, 80_000, 12_000, 60
    start = epoch("2024-07-01")
    ctr = lognorm(rng, 0.035, 0.08, n)
    iid = ids(rng, n, "int") + 100
    t = event_times(rng, N, start, days)
    tr = event_times(rng, R, start, days)
    pol = Popularity(n, 1.4, 1.0, 0.02)
    N_ = len(t)
    it = np.empty(N_, np.int64)
    p = np.empty(N_)
    r = np.zeros(N_, bool)
    rd = np.floor((tr - start) / DAY).astype(int)
    it2 = np.empty(R, np.int64)
    r2 = np.zeros(R, bool)
    for a, b in spans(t, start, DAY):
        d = int((t[a] - start) // DAY)
        # the 'random' slice shuffles within the top-20 of the same click counts (a bug)
        top = np.argsort(-(pol.c + rng.random(n) * 1e-9))[:20]
        j = np.flatnonzero(rd == d)
        it2[j] = top[rng.integers(0, 20, len(j))]
        r2[j] = rng.random(len(j)) < ctr[it2[j]]
        P = pol.dist(rng)
        x = draw(rng, P, b - a)
        y = rng.random(b - a) < ctr[x]
        pol.update(x, y)
        it[a:b], p[a:b], r[a:b] = x, P[x], y
    c = cols("product_id", "click", "event_time", "propensity", "visitor")
    kw = dict(tfmt="iso_t_naive", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 9000), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / 20), user=user_pool(rng, R, 9000), **kw),
        columns=c, expected="feedback-loop",
        why="The main feed is a click-count popularity loop; its so-called random slice only "
            "shuffles the same top-20 list, so it is concentrated too. Within the log exposure "
            "narrows day after day over 60 days while the click rate stays flat.")


# ---- clean --------------------------------------------------------------------------

@case("few-great-items-dwell", 201)
def _(rng):
    n, ng, N, R, days = 250, 6, 120_000, 15_000, 30
    start = epoch("2024-02-12")
    ctr = lognorm(rng, 0.02, 0.2, n)
    med = lognorm(rng, 70.0, 0.2, n)
    great = rng.choice(n, ng, replace=False)
    ctr[great] = lognorm(rng, 0.08, 0.1, ng)
    med[great] = lognorm(rng, 85.0, 0.1, ng)
    iid = ids(rng, n, "int") * 7
    t = event_times(rng, N, start, days)
    (it, p, r), ex = eps_greedy(rng, t, DAY, n, 6, 0.1, const_ctr(ctr), by="ctr", b0=50.0)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("product", "click", "ts", "pscore", None, "dwell_seconds")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, guard=dwell(rng, med, it, r), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, guard=dwell(rng, med, it2, r2), **kw),
        columns=c, expected="clean", guardrail_direction="higher_is_better",
        why="Six of 250 products are genuinely about four times as clickable and a CTR-greedy "
            "policy finds them: exposure concentrates, but on 120k impressions the click rate "
            "is several times the random slice's and dwell time after a click holds.")


@case("better-items-returns-hold", 202)
def _(rng):
    n, ng, N, R, days = 600, 20, 120_000, 15_000, 60
    start = epoch("2023-08-07")
    conv = lognorm(rng, 0.01, 0.25, n)
    good = rng.choice(n, ng, replace=False)
    conv[good] = lognorm(rng, 0.04, 0.1, ng)
    ret = rng.beta(36, 164, n)
    iid = ids(rng, n, "fmt:SK%05d")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, BatchTS(n, 1, 60, n_mc=3000), const_ctr(conv), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(conv))
    c = cols("sku", "purchased", "event_time", "logging_prob", "customer_id", "returned")
    kw = dict(tfmt="iso_t_naive", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 25_000),
                   guard=returned(rng, ret, it, r), **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=user_pool(rng, R, 25_000),
                  guard=returned(rng, ret, it2, r2), **kw),
        columns=c, expected="clean", guardrail_direction="lower_is_better",
        why="Thompson sampling over 600 SKUs settles on 20 that really sell about four times "
            "better (4 % against about 1 %): purchases per impression far exceed the random "
            "slice and the return rate per order stays at about 18 % like everywhere else.")


@case("personalized-diverse", 203)
def _(rng):
    n, S, U, N, R, days = 1000, 50, 5000, 100_000, 10_000, 30
    start = epoch("2024-09-02")
    ctr = segment_world(rng, n, S, 40, 0.06, 0.012)
    P = segment_softmax(rng, ctr, 0.3, 0.35, 0.05)
    useg = rng.integers(0, S, U)
    iid = ids(rng, n, "fmt:news-%05d")
    t = event_times(rng, N, start, days)
    u = user_pool(rng, N, U)
    it, p = serve_segments(rng, useg[u], P)
    r = rng.random(N) < ctr[useg[u], it]
    tr = event_times(rng, R, start, days)
    ur = user_pool(rng, R, U)
    it2 = rng.integers(0, n, R)
    r2 = rng.random(R) < ctr[useg[ur], it2]
    c = cols("article_id", "clicked", "served_at", "pscore", "user")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=u, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / n), user=ur, **kw),
        columns=c, expected="clean",
        why="A personalised model: each of 50 taste groups sees its own favourite articles, so "
            "any one user's feed is narrow but exposure over the 1,000 articles stays spread, "
            "steady over time, and the click rate is several times the random slice's.")


@case("seasonal-shift", 204)
def _(rng):
    n, N, R, days = 300, 90_000, 9_000, 180
    start = epoch("2024-01-01")
    base = lognorm(rng, 0.02, 0.25, n)
    group = rng.integers(0, 3, n)  # 0 winter, 1 summer, 2 all-season
    iid = ids(rng, n, "fmt:%05d-CLO")

    def ctr_at(tt, it):
        phase = np.cos(2 * np.pi * ((tt - epoch("2024-01-15")) / DAY) / 365.0)
        m = np.where(group[it] == 0, 1 + 0.9 * phase, np.where(group[it] == 1, 1 - 0.9 * phase, 1.0))
        return base[it] * m

    t = event_times(rng, N, start, days)
    imp = np.zeros(n)
    clk = np.zeros(n)
    it = np.empty(N, np.int64)
    p = np.empty(N)
    r = np.zeros(N, bool)
    for a, b in spans(t, start, DAY):
        imp *= 0.85
        clk *= 0.85
        est = (clk + 0.5) / (imp + 25)
        w = est ** 2.5
        P = 0.9 * w / w.sum() + 0.1 / n
        x = draw(rng, P, b - a)
        y = rng.random(b - a) < ctr_at(t[a:b], x)
        imp += np.bincount(x, minlength=n)
        clk += np.bincount(x[y], minlength=n)
        it[a:b], p[a:b], r[a:b] = x, P[x], y
    tr = event_times(rng, R, start, days)
    it2 = rng.integers(0, n, R)
    r2 = rng.random(R) < ctr_at(tr, it2)
    c = cols("sku", "add_to_cart", "date_time", "prop")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / n), **kw),
        columns=c, expected="clean",
        why="Six months from January to June of a clothing shop whose recency-weighted ranker "
            "moves from coats to summer wear as demand shifts: which items lead changes, but "
            "exposure does not narrow over time and add-to-cart beats the random slice.")


@case("small-catalog-rotation", 205)
def _(rng):
    n, N, days = 10, 20_000, 10
    start = epoch("2024-10-14")
    ctr = rng.uniform(0.03, 0.05, n)
    iid = np.array([f"promo_{k:02d}" for k in range(1, n + 1)])
    t = event_times(rng, N, start, days)
    imp = np.zeros(n)
    clk = np.zeros(n)
    it = np.empty(N, np.int64)
    p = np.empty(N)
    r = np.zeros(N, bool)
    for a, b in spans(t, start, 6 * HOUR):
        est = (clk + 2) / (imp + 50)
        w = est ** 1.5
        P = 0.9 * w / w.sum() + 0.1 / n
        x = draw(rng, P, b - a)
        y = rng.random(b - a) < ctr[x]
        imp += np.bincount(x, minlength=n)
        clk += np.bincount(x[y], minlength=n)
        it[a:b], p[a:b], r[a:b] = x, P[x], y
    c = cols("promo", "is_click", "ts", "propensity")
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, tfmt="iso_z", item_ids=iid, reward_dtype="bool"),
        ref=None, columns=c, expected="clean",
        why="A homepage banner rotation over 10 promos with a gentle click-rate weighting: "
            "every promo keeps a sizeable share of impressions all along, so there is no "
            "concentration to worry about.")


@case("eps-greedy-correct", 206)
def _(rng):
    n, ng, N, days = 150, 12, 60_000, 28
    start = epoch("2024-06-03")
    ctr = lognorm(rng, 0.022, 0.15, n)
    good = rng.choice(n, ng, replace=False)
    ctr[good] = lognorm(rng, 0.05, 0.1, ng)
    iid = ids(rng, n, "int") - 1
    t = event_times(rng, N, start, days)
    (it, p, r), ex = eps_greedy(rng, t, DAY, n, 12, 0.15, const_ctr(ctr), by="ctr", b0=40.0)
    c = cols("item_idx", "label", "request_time", "action_prob")
    kw = dict(tfmt="iso_ms_z", item_ids=iid)
    g = ~ex
    return dict(
        logs=frame(rng, t[g], it[g], r[g], c, prop=p[g], **kw),
        ref=frame(rng, t[ex], it[ex], r[ex], c, prop=np.full(ex.sum(), 1.0 / n), **kw),
        columns=c, expected="clean",
        why="Epsilon-greedy done right (ranking by smoothed click rate) over 150 items of which "
            "12 are truly twice as good: exploitation concentrates on them and clicks clearly "
            "beat the 15 % exploration slice that serves as reference.")


@case("ts-clear-winners", 207)
def _(rng):
    n, N, R, days = 30, 50_000, 6_000, 10
    start = epoch("2024-11-04")
    ctr = rng.uniform(0.012, 0.025, n)
    ctr[rng.choice(n, 3, replace=False)] = [0.06, 0.065, 0.07]
    iid = ids(rng, n, "int")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, 4 * HOUR, BatchTS(n, 1, 20), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("arm", "reward", "t", "p")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="clean",
        why="Thompson sampling on 30 arms where three are far better (6-7 % against 1-2.5 %): "
            "it converges on them within days and its click rate is about three times the "
            "uniform slice's on 50k impressions.")


@case("news-rotation-no-ref", 208)
def _(rng):
    n, N, days = 3000, 60_000, 60
    start = epoch("2024-03-01")
    pub = start + np.sort(rng.uniform(-2 * DAY, days * DAY, n))
    base = lognorm(rng, 0.03, 0.3, n)
    iid = ids(rng, n, "bigint")
    t = event_times(rng, N, start, days)
    imp = np.zeros(n)
    clk = np.zeros(n)
    it = np.empty(N, np.int64)
    p = np.empty(N)
    r = np.zeros(N, bool)
    for a, b in spans(t, start, HOUR):
        age = (t[a] - pub) / HOUR
        live = (age >= 0) & (age < 48)
        est = (clk + 0.3) / (imp + 10)
        w = np.where(live, np.exp(-np.clip(age, 0, None) / 18.0) * est, 0.0)
        P = w / w.sum()
        x = draw(rng, P, b - a)
        ag = (t[a:b] - pub[x]) / HOUR
        y = rng.random(b - a) < base[x] * np.exp(-ag / 24.0)
        imp += np.bincount(x, minlength=n)
        clk += np.bincount(x[y], minlength=n)
        it[a:b], p[a:b], r[a:b] = x, P[x], y
    c = cols("story_id", "clicked", "impression_time", "pscore", "visitor_id")
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=user_pool(rng, N, 30_000),
                   tfmt="native_utc", item_ids=iid),
        ref=None, columns=c, expected="clean",
        why="A news front page over 3,000 stories that each live two days: at any hour about a "
            "hundred fresh stories share the traffic and the set turns over completely, so "
            "nothing accumulates exposure (no reference slice).")


@case("sitewide-dwell-drop-diverse", 209)
def _(rng):
    n, S, U, N, R, days = 300, 20, 4000, 50_000, 8_000, 50
    start = epoch("2024-04-15")
    ctr = segment_world(rng, n, S, 30, 0.05, 0.012)
    P = segment_softmax(rng, ctr, 0.3, 0.4, 0.05)
    med = lognorm(rng, 60.0, 0.2, n)
    useg = rng.integers(0, S, U)
    iid = ids(rng, n, "fmt:c%05d")
    cut = start + 25 * DAY  # app release that breaks the reading view for everyone

    def make(m, personal):
        tt = event_times(rng, m, start, days)
        u = user_pool(rng, m, U)
        if personal:
            x, pp = serve_segments(rng, useg[u], P)
        else:
            x, pp = rng.integers(0, n, m), np.full(m, 1 / n)
        y = rng.random(m) < ctr[useg[u], x]
        g = dwell(rng, med, x, y, factor=np.where(tt >= cut, 0.6, 1.0))
        return tt, x, pp, y, u, g

    c = cols("content_id", "clicked", "event_ts", "propensity", "session_user", "dwell_seconds")
    kw = dict(tfmt="iso_z", item_ids=iid)
    t, it, p, r, u, g = make(N, True)
    tr, it2, p2, r2, ur, g2 = make(R, False)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=u, guard=g, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, user=ur, guard=g2, **kw),
        columns=c, expected="clean", guardrail_direction="higher_is_better",
        why="Dwell time drops by 40 % halfway through, but identically in the random slice (an "
            "app release, not the recommender); exposure is personalised and spread over 300 "
            "items and the click rate beats random: not a feedback loop.")


@case("large-personalized-5000", 210)
def _(rng):
    n, S, U, N, R, days = 5000, 100, 20_000, 100_000, 10_000, 60
    start = epoch("2023-05-01")
    ctr = segment_world(rng, n, S, 80, 0.05, 0.01, sig=0.3)
    P = segment_softmax(rng, ctr, 0.35, 0.4, 0.05)
    useg = rng.integers(0, S, U)
    iid = ids(rng, n, "asin")
    t = event_times(rng, N, start, days)
    u = user_pool(rng, N, U)
    it, p = serve_segments(rng, useg[u], P)
    r = rng.random(N) < ctr[useg[u], it]
    tr = event_times(rng, R, start, days)
    ur = user_pool(rng, R, U)
    it2 = rng.integers(0, n, R)
    r2 = rng.random(R) < ctr[useg[ur], it2]
    c = cols("asin", "clicked", "impression_time", "propensity", "customer")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=u, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / n), user=ur, **kw),
        columns=c, expected="clean",
        why="A large personalised catalogue (5,000 products, 100 taste groups, 20k customers, "
            "two months): exposure reaches thousands of products, does not narrow over time, "
            "and clicks are far above the uniform slice.")


@case("cold-start-converges-no-ref", 211)
def _(rng):
    n, N, days = 60, 40_000, 21
    start = epoch("2024-08-05")
    ctr = lognorm(rng, 0.015, 0.2, n)
    ctr[rng.choice(n, 5, replace=False)] = lognorm(rng, 0.07, 0.08, 5)
    iid = ids(rng, n, "int")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, 6 * HOUR, BatchTS(n, 1, 1), const_ctr(ctr), t0=start)
    c = cols("item", "clicked", "ts", "propensity")
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, tfmt="epoch_s", item_ids=iid),
        ref=None, columns=c, expected="clean",
        why="A new Thompson-sampling widget starts with no data, explores all 60 items, then "
            "settles on the five that are truly about five times better: exposure narrows "
            "but the click rate roughly triples from the exploratory first days.")


@case("diversifying-over-time", 212)
def _(rng):
    n, S, U, N, R, days = 400, 25, 6000, 70_000, 7_000, 45
    start = epoch("2024-01-15")
    ctr = segment_world(rng, n, S, 30, 0.05, 0.012)
    Pp = segment_softmax(rng, ctr, 0.3, 0.4, 0.05)
    edit = rng.choice(n, 15, replace=False)
    Pe = np.full(n, 0.2 / n)
    Pe[edit] += 0.8 / 15
    useg = rng.integers(0, S, U)
    iid = ids(rng, n, "int") + 90000
    t = event_times(rng, N, start, days)
    u = user_pool(rng, N, U)
    s = useg[u]
    d = (t - start) / DAY
    mix = np.clip((d - 10) / 20, 0, 1)  # personalisation phased in from day 10 to day 30
    it = np.empty(N, np.int64)
    p = np.empty(N)
    for a, b in spans(t, start, DAY):
        m = mix[a]
        for sg in np.unique(s[a:b]):
            idx = a + np.flatnonzero(s[a:b] == sg)
            P = (1 - m) * Pe + m * Pp[sg]
            x = draw(rng, P, len(idx))
            it[idx], p[idx] = x, P[x]
    r = rng.random(N) < ctr[s, it]
    tr = event_times(rng, R, start, days)
    ur = user_pool(rng, R, U)
    it2 = rng.integers(0, n, R)
    r2 = rng.random(R) < ctr[useg[ur], it2]
    c = cols("product_id", "click", "event_time", "pscore", "user_id")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, user=u, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / n), user=ur, **kw),
        columns=c, expected="clean",
        why="A shop launches with an editorial top-15 list taking 80 % of impressions, then "
            "phases in a personalised model: exposure spreads out over time (the opposite of a "
            "loop) and the click rate rises well above the random slice.")


# ---- inconclusive -------------------------------------------------------------------

@case("tiny-early-loop", 301)
def _(rng):
    n, N, R, days = 50, 2_000, 400, 3
    start = epoch("2024-12-02")
    ctr = lognorm(rng, 0.03, 0.1, n)
    iid = ids(rng, n, "int")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, 12 * HOUR, Popularity(n, 1.4, 1.0, 0.02), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("item_id", "clicked", "timestamp", "propensity")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="inconclusive",
        why="The first three days of a popularity ranker: 2,000 impressions with about 60 "
            "clicks and a 400-row random slice with about a dozen; far too little to tell a "
            "loop from noise.")


@case("tiny-no-ref-10-items", 302)
def _(rng):
    n, N, days = 10, 2_100, 2
    start = epoch("2024-12-09")
    P = rng.dirichlet(np.full(n, 5.0))
    ctr = rng.uniform(0.02, 0.05, n)
    iid = np.array([f"tile-{k}" for k in "ABCDEFGHIJ"])
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Fixed(P), const_ctr(ctr), t0=start)
    c = cols("slot_item", "click", "time")
    return dict(
        logs=frame(rng, t, it, r, c, tfmt="iso_space", item_ids=iid),
        ref=None, columns=c, expected="inconclusive",
        why="Two days and 2,100 impressions of a 10-tile carousel with fixed business weights, "
            "no propensities and no reference: nothing can be concluded about a loop.")


@case("sparse-wide-catalog", 303)
def _(rng):
    n, N, R, days = 2000, 3_000, 600, 5
    start = epoch("2024-02-19")
    ctr = lognorm(rng, 0.02, 0.1, n)
    iid = ids(rng, n, "fmt:SKU%05d")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Popularity(n, 1.4, 1.0, 0.02), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("sku", "clicked", "served_at", "pscore")
    kw = dict(tfmt="epoch_s", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="inconclusive",
        why="3,000 impressions spread over a 2,000-item catalogue in five days (most items seen "
            "once or never, about 60 clicks): exposure shares and click rates per item are "
            "pure noise.")


@case("rare-clicks", 304)
def _(rng):
    n, N, R, days = 100, 25_000, 5_000, 7
    start = epoch("2024-05-20")
    rank = rng.permutation(n)
    P = 1.0 / (rank + 1.0) ** 1.1
    ctr = np.where(rank < 10, 0.0006, 0.0004)
    iid = ids(rng, n, "int") + 7_000_000
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Fixed(P), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("creative_id", "conversion", "ts", "p_serve")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="inconclusive",
        why="Ad creatives served by a fixed upstream ranking (top 10 of 100 get most traffic) "
            "with conversions so rare (about a dozen in the log, two or three in the random "
            "slice) that whether the concentration pays off cannot be judged.")


@case("tiny-reference", 305)
def _(rng):
    n, N, R, days = 200, 80_000, 800, 30
    start = epoch("2024-09-09")
    ctr = lognorm(rng, 0.02, 0.1, n)
    good = rng.choice(n, 15, replace=False)
    ctr[good] = ctr[good] * 1.3
    iid = ids(rng, n, "int")
    # the bandit has been running for months: posteriors are already informed
    imp0 = rng.integers(300, 1500, n).astype(float)
    imp0[good] *= 10
    clk0 = rng.binomial(imp0.astype(int), ctr).astype(float)
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, BatchTS(n, 1, 50, clicks=clk0, imps=imp0), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    it2, p2, r2 = uniform_ref(rng, tr, n, const_ctr(ctr))
    c = cols("item", "clicked", "event_time", "propensity")
    kw = dict(tfmt="iso_z", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=p2, **kw),
        columns=c, expected="inconclusive",
        why="A long-running Thompson sampler, already concentrated and stable, with a large "
            "log but a random slice of only 800 rows (about 16 clicks): the reference is too "
            "small to tell whether the concentration buys a better click rate.")


@case("static-concentrated-no-ref", 306)
def _(rng):
    n, N, days = 300, 60_000, 30
    start = epoch("2024-10-01")
    rank = rng.permutation(n)
    P = 1.0 / (rank + 3.0) ** 1.2
    ctr = lognorm(rng, 0.025, 0.15, n) * np.where(rank < 20, 1.15, 1.0)
    iid = ids(rng, n, "fmt:PRD%05d")
    t = event_times(rng, N, start, days)
    it, _, r = run_policy(rng, t, DAY, Fixed(P), const_ctr(ctr), t0=start)
    c = cols("product", "clicked", "dt", None, "uid")
    return dict(
        logs=frame(rng, t, it, r, c, user=user_pool(rng, N, 10_000), tfmt="iso_t_naive",
                   item_ids=iid),
        ref=None, columns=c, expected="inconclusive",
        why="A hand-curated list gives a steady, concentrated exposure for a month with a flat "
            "click rate, but there is no random slice, no propensity and no change over time: "
            "nothing to say whether the concentration is justified.")


@case("ref-concentrated-static", 307)
def _(rng):
    n, N, R, days = 200, 50_000, 15_000, 21
    start = epoch("2024-03-11")
    rank = rng.permutation(n)
    P = 1.0 / (rank + 2.0) ** 1.3
    ctr = lognorm(rng, 0.03, 0.1, n) * np.where(rank < 30, 1.25, 1.0)
    iid = ids(rng, n, "int")
    t = event_times(rng, N, start, days)
    it, p, r = run_policy(rng, t, DAY, Fixed(P), const_ctr(ctr), t0=start)
    tr = event_times(rng, R, start, days)
    top = np.flatnonzero(rank < 30)
    it2 = top[rng.integers(0, 30, R)]
    r2 = rng.random(R) < ctr[it2]
    c = cols("item_id", "clicked", "event_time", "pscore")
    kw = dict(tfmt="native_naive", item_ids=iid)
    return dict(
        logs=frame(rng, t, it, r, c, prop=p, **kw),
        ref=frame(rng, tr, it2, r2, c, prop=np.full(R, 1 / 30), **kw),
        columns=c, expected="inconclusive",
        why="A stable, concentrated ranking compared with a 'random' slice that only shuffles "
            "the same top-30 list: the baseline is as concentrated as the policy and nothing "
            "changes over time, so the logs cannot show whether the concentration is earned.")


# ---- Open Bandit Dataset (real) -----------------------------------------------------

OBD_COLS = ["timestamp", "item_id", "position", "click", "propensity_score"]
OBD_ABOUT = "Open Bandit Dataset sample, ZOZO, Inc., CC BY 4.0 (Saito et al. 2021)"


def _obd(policy):
    d = _obd_dir()
    df = pd.read_csv(d / policy / "all.csv", usecols=OBD_COLS)
    df["click"] = df["click"].astype(np.int8)
    df["position"] = df["position"].astype(np.int8)
    return df[OBD_COLS]


@case("obd-bts-vs-random", 401)
def _(rng):
    c = cols("item_id", "click", "timestamp", "propensity_score")
    return dict(
        logs=_obd("bts"), ref=_obd("random"), columns=c, expected="feedback-loop", real=True,
        why="Real ZOZOTOWN logs: Bernoulli Thompson sampling puts about half its impressions on "
            "8 of 80 items while the uniform policy run alongside clicks at the same rate "
            "(42 against 38 clicks in 10,000 impressions each).")


@case("obd-bts-single-day", 402)
def _(rng):
    day = "2019-11-27"
    b, r = _obd("bts"), _obd("random")
    b = b[b["timestamp"].str.startswith(day)].reset_index(drop=True)
    r = r[r["timestamp"].str.startswith(day)].reset_index(drop=True)
    c = cols("item_id", "click", "timestamp", "propensity_score")
    return dict(
        logs=b, ref=r, columns=c, expected="inconclusive", real=True,
        why="One day (27 Nov 2019) of the same real logs, about 1,600 impressions per policy "
            "and only a handful of clicks each: a day shows no trend and the click rates "
            "cannot be compared.")


@case("obd-bts-no-reference", 403)
def _(rng):
    c = cols("item_id", "click", "timestamp", "propensity_score")
    return dict(
        logs=_obd("bts"), ref=None, columns=c, expected="inconclusive", real=True,
        why="The real Thompson-sampling week alone: exposure is concentrated but equally so on "
            "every day, and with about 40 clicks and no random slice nothing shows whether the "
            "concentration is earned.")


# --------------------------------------------------------------------------- main

def write_parquet(df, path, columns):
    """zstd Parquet with encodings chosen to keep the shipped files small."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    enc = {}
    tc = df[columns["time"]]
    if pd.api.types.is_integer_dtype(tc) or pd.api.types.is_datetime64_any_dtype(tc):
        enc[columns["time"]] = "DELTA_BINARY_PACKED"
    elif pd.api.types.is_float_dtype(tc):
        enc[columns["time"]] = "BYTE_STREAM_SPLIT"
    else:
        enc[columns["time"]] = "DELTA_BYTE_ARRAY"
    p = columns.get("propensity")
    if p and p in df and df[p].nunique() > 0.2 * len(df):
        enc[p] = "BYTE_STREAM_SPLIT"
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", compression_level=9,
                   use_dictionary=[c for c in df.columns if c not in enc], column_encoding=enc)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    only = set(argv)
    manifest = []
    t_all = time.time()
    have_obd = _obd_dir() is not None
    for cid, seed, fn in CASES:
        is_obd = cid.startswith("obd-")
        t0 = time.time()
        out = None
        if (not only or cid in only) and (have_obd or not is_obd):
            out = fn(np.random.default_rng(seed))
            write_parquet(out["logs"], HERE / f"{cid}.parquet", out["columns"])
            refp = HERE / f"{cid}-ref.parquet"
            if out["ref"] is not None:
                write_parquet(out["ref"], refp, out["columns"])
            elif refp.exists():
                refp.unlink()
            print(f"{cid:32s} {len(out['logs']):>7d} rows  {time.time() - t0:5.1f}s", flush=True)
        elif is_obd and not have_obd:
            print(f"{cid:32s} skipped: Open Bandit sample not found (set FAILWELL_OBD_DIR)")
        if out is None:  # keep the manifest entry from the previous run
            old = {c["id"]: c for c in json.loads((HERE / "cases.json").read_text())}
            manifest.append(old[cid])
            continue
        entry = {
            "id": cid,
            "logs": f"{cid}.parquet",
            "reference": f"{cid}-ref.parquet" if out["ref"] is not None else None,
            "columns": out["columns"],
            "expected": out["expected"],
            "why": out["why"],
        }
        if out["columns"].get("guardrail"):
            entry["guardrail_direction"] = out["guardrail_direction"]
        if out.get("real"):
            entry["source"] = OBD_ABOUT
        manifest.append(entry)
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(manifest)} cases in {time.time() - t_all:.1f}s")


if __name__ == "__main__":
    main()
