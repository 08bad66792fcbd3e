"""Medians, spreads and ratios (perf.md section 6).

Ratio convention: throughput ours/peer, latency, CPU and memory peer/ours - so > 1.0 always
means Docket is better. A side-by-side figure is the median over interleaved pairs of the
per-pair ratio, with the min-max of those per-pair ratios as its spread.
"""

import statistics


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def spread(values):
    vals = [v for v in values if v is not None]
    return [min(vals), max(vals)] if vals else None


def summary(values):
    vals = [v for v in values if v is not None]
    return {"median": median(vals), "min": min(vals) if vals else None, "max": max(vals) if vals else None,
            "values": vals}


def ratio(ours, peer, higher_is_better):
    """ours/peer for higher-is-better figures, peer/ours otherwise; None if undefined."""
    if ours is None or peer is None:
        return None
    if higher_is_better:
        return ours / peer if peer else None
    return peer / ours if ours else None


def paired_ratio(ours_values, peer_values, higher_is_better):
    """Median and spread of per-pair ratios (pairs are index-aligned runs)."""
    rs = [ratio(o, p, higher_is_better) for o, p in zip(ours_values, peer_values)]
    rs = [r for r in rs if r is not None]
    return {"median": median(rs), "min": min(rs) if rs else None, "max": max(rs) if rs else None, "pairs": rs}
