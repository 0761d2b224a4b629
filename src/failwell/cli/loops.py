"""`failwell loop`: feedback loops in recommenders (audit, simulate, off-policy estimates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from failwell.cli.common import (
    EXIT_USAGE,
    FailOn,
    KbProject,
    RecordDatabaseUrl,
    RecordInKb,
    ReportFmt,
    ReportOutput,
    Upload,
    boundary,
    check_project,
    err,
    finish,
    narrow_table,
)

loop_app = typer.Typer(help="Feedback loops in recommenders: audit logs, simulate retraining, "
                            "estimate a new policy off-policy.", no_args_is_help=True)

Column = Annotated[str | None, typer.Option()]


@loop_app.command("audit")
@boundary
def loop_audit(
    logs: Annotated[Path, typer.Argument(help="Impression log, CSV or Parquet.")],
    item: Annotated[str, typer.Option(help="Column of the item shown.")],
    reward: Annotated[str, typer.Option(help="Column of the reward the system optimizes "
                                             "(click, purchase...): the proxy.")],
    time: Annotated[str | None, typer.Option(
        help="Column of when it was shown (ISO 8601 or epoch seconds): trends and "
             "rich-get-richer need it.")] = None,
    propensity: Annotated[str | None, typer.Option(
        help="Column of the logging policy's probability of showing the item.")] = None,
    user: Annotated[str | None, typer.Option(help="Column of the user.")] = None,
    guardrail: Annotated[list[str], typer.Option(
        help="Column that must not fall, COLUMN[:higher|lower] (which is better; "
             "repeatable).")] = [],  # noqa: B006
    reference: Annotated[Path | None, typer.Option(
        help="A reference log with the same columns: an exploration or random slice that "
             "ran at the same time.")] = None,
    windows: Annotated[int | None, typer.Option(
        min=2, max=1000, help="Time windows (default: days when the log spans 4-31 of "
                              "them, else 10).")] = None,
    margin: Annotated[float, typer.Option(
        min=0.001, max=0.999, help="Gini difference that counts as concentration.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    fmt: ReportFmt = "terminal",
    output: ReportOutput = None,
    fail_on: FailOn = "medium",
    kb: RecordInKb = False,
    db: RecordDatabaseUrl = None,
    project: KbProject = None,
    upload: Upload = None,
) -> None:
    """Exposure concentration, its trend, rich-get-richer and the proxy, against a
    reference log; a finding when exposure concentrates and the proxy does not pay for it
    (or a guardrail falls). Exit 2 when the logs cannot tell."""
    from failwell.loops.audit import audit

    check_project(project, kb, db)
    result_audit = audit(logs, item=item, reward=reward, time=time, propensity=propensity,
                         user=user, guardrails=guardrail, reference=reference,
                         windows=windows, margin=margin, seed=seed)
    if fmt == "terminal" and output is None:
        Console().print(figures_table(result_audit))
    finish(result_audit.to_result(), fmt, output, f"failwell loop audit of {logs.name}",
           fail_on, kb=kb, db=db, project=project, upload=upload)
    if result_audit.verdict == "inconclusive":
        err.print("[yellow]Inconclusive:[/] " + "; ".join(result_audit.reasons) + ".",
                  highlight=False)
        raise typer.Exit(EXIT_USAGE)


def figures_table(result):
    """The figures side by side: the log, the reference, and the change."""
    ref = result.reference
    rows = []

    def row(label, fn, fmt="{:.3f}"):
        values = [fn(result.logs)] + ([fn(ref)] if ref else [])
        rows.append([label, *("n/a" if v is None else fmt.format(v) for v in values)])

    row("impressions", lambda s: s["concentration"]["impressions"], "{:,}")
    row("items shown / catalog", lambda s: f"{s['items_shown']}/{s['catalog_items']}", "{}")
    row("exposure Gini", lambda s: s["concentration"]["gini"])
    row("Gini of even exposure", lambda s: s["uniform_gini"])
    row("entropy (normalised)", lambda s: s["concentration"]["entropy"])
    row("coverage", lambda s: s["concentration"]["coverage"], "{:.1%}")
    row(f"top {result.logs['concentration']['top_items']} items' share",
        lambda s: s["concentration"]["top_share"], "{:.1%}")
    row("rich-get-richer slope", lambda s: _interval(s.get("rich_get_richer"),
                                                      "coefficient"), "{}")
    if result.logs.get("user_overlap") or (ref and ref.get("user_overlap")):
        row("users' overlap (Jaccard)", lambda s: (s.get("user_overlap") or {}).get(
            "mean_jaccard"))
    row("reward rate (proxy)", lambda s: _interval(s["proxy"], "mean", "{:.4f}"), "{}")
    for name in result.logs["guardrails"]:
        row(f"guardrail {name}", lambda s, n=name: _interval(s["guardrails"][n], "mean",
                                                             "{:.4g}"), "{}")
    heads = ["figure", "logs"] + (["reference"] if ref else [])
    return narrow_table(*heads, rows=rows, whole=("figure",),
                        title=f"loop audit: {result.verdict}",
                        caption="; ".join(result.reasons))


def _interval(d, key, fmt="{:.2f}"):
    if not d:
        return None
    low, high = d.get("low"), d.get("high")
    return f"{fmt.format(d[key])} [{fmt.format(low)}, {fmt.format(high)}]"


@loop_app.command("ope")
@boundary
def loop_ope(
    logs: Annotated[Path, typer.Argument(help="Impression log with propensities, CSV or "
                                              "Parquet.")],
    item: Annotated[str, typer.Option(help="Column of the item shown (the action).")],
    reward: Annotated[str, typer.Option(help="Column of the reward.")],
    propensity: Annotated[str | None, typer.Option(
        help="Column of the logging policy's probability of the shown item (IPS, SNIPS and "
             "DR all need it).")] = None,
    candidate: Annotated[str, typer.Option(
        help="The policy to evaluate: 'uniform', 'top:K' (the K items with the best reward "
             "rate in the training part, uniformly) or module:function (called with the "
             "evaluation rows and the item list, returns probabilities per row and item).")
    ] = "uniform",
    time: Annotated[str | None, typer.Option(
        help="Column of when it was shown: the training part is the earliest rows.")] = None,
    context: Annotated[list[str], typer.Option(
        help="Numeric context column for DR's reward model (repeatable; none: the reward "
             "model knows only the item).")] = [],  # noqa: B006
    train_fraction: Annotated[float, typer.Option(
        min=0.05, max=0.95, help="Share of rows a top:K or module:function candidate learns "
                                 "from; it is evaluated on the rest.")] = 0.5,
    estimator: Annotated[list[str], typer.Option(
        help="ips, snips or dr (repeatable; default all three).")] = [],  # noqa: B006
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
    method: Annotated[str, typer.Option(help="Intervals: normal or bootstrap.")] = "normal",
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
) -> None:
    """Off-policy estimates (IPS, self-normalized IPS, doubly robust) of a candidate
    policy's reward from logs with propensities, with confidence intervals: the safe way to
    test a new policy before it runs."""
    from failwell.cli.common import check_fmt, print_json
    from failwell.loops.evaluate import evaluate_candidate

    check_fmt(fmt)
    result = evaluate_candidate(logs, item=item, reward=reward, propensity=propensity,
                                candidate=candidate, time=time, context=context,
                                train_fraction=train_fraction,
                                estimators=estimator or None, confidence=confidence,
                                method=method)
    if fmt == "json":
        print_json(result)
        return
    rows = [[e["estimator"], f"{e['value']:.5f}", f"[{e['low']:.5f}, {e['high']:.5f}]",
             f"{e['effective_sample_size']:,.0f}", f"{e['max_weight']:.3g}"]
            for e in result["estimates"]]
    Console().print(narrow_table(
        "estimator", "value", f"{confidence:.0%} interval", "effective n", "max weight",
        rows=rows, whole=("estimator",),
        title=f"candidate {candidate!r} on {result['evaluated_rows']:,} rounds",
        caption=f"the logging policy earned {result['logged_reward']:.5f} on the same rounds"))


@loop_app.command("simulate")
@boundary
def loop_simulate(
    users: Annotated[int, typer.Option(min=2, help="Simulated users.")] = 200,
    items: Annotated[int, typer.Option(min=1, help="Catalog size.")] = 300,
    rounds: Annotated[int, typer.Option(min=1, help="Retraining rounds.")] = 20,
    k: Annotated[int, typer.Option(min=1, help="Slate size.")] = 10,
    strategy: Annotated[list[str], typer.Option(
        help="baseline, exploration, ips, diversity, no-feedback (the control) or ideal "
             "(repeatable; default the first four).")] = [],  # noqa: B006
    epsilon: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of each slate explored at random.")] = 0.1,
    model: Annotated[str | None, typer.Option(
        help="Your recommender, module:function: called with the logs so far, returns a "
             "users x items score matrix or a policy(users, k).")] = None,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
    output: Annotated[Path | None, typer.Option(
        help="Write every round's figures here (.json, or .csv for the table).")] = None,
) -> None:
    """Simulate a recommender retrained on the interactions it caused (Chaney et al. 2018):
    proxy, true utility, homogenization and concentration per round, for each mitigation
    side by side in one world."""
    import json
    import sys

    from failwell.cli.common import check_fmt, print_json, writable_path
    from failwell.loops.simulate import DEFAULT_STRATEGIES, SimulationConfig, simulate
    from failwell.progress import progress_bar

    check_fmt(fmt)
    if output is not None:
        writable_path(output)
        if output.suffix.lower() not in (".json", ".csv"):
            from failwell.errors import InputError

            raise InputError(f"--output {output}: use a .json or .csv file.")
    config = SimulationConfig(n_users=users, n_items=items, n_rounds=rounds, k=k,
                              epsilon=epsilon, seed=seed)
    recommender = _import_model(model) if model else None
    with progress_bar(label="simulating") as progress:
        result = simulate(config, strategies=tuple(strategy) or DEFAULT_STRATEGIES,
                          model=recommender,
                          progress=lambda r: progress("round", r, config.n_rounds))
    if output is not None:
        if output.suffix.lower() == ".csv":
            result.rounds.to_csv(output, index=False)
        else:
            output.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        err.print(f"rounds written to {output}")
    if fmt == "json":
        print_json(result.to_dict())
        return
    summary = result.summary()
    rows = [[name, f"{r.ctr:.3f}", f"{r.utility_ratio:.3f}", f"{r.homogenization:+.3f}",
             f"{r.gini:.3f}", f"{r.coverage:.1%}"] for name, r in summary.iterrows()]
    heads = ("strategy", "CTR", "utility/ideal", "homogenization", "Gini", "coverage")
    Console().print(narrow_table(
        *heads, rows=rows, whole=heads,
        title=f"round {config.n_rounds} of {config.n_rounds} "
              f"({config.n_users} users, {config.n_items} items)",
        caption="CTR is the proxy; utility is what users truly get; homogenization is users' "
                "overlap minus the ideal recommender's (Chaney et al. 2018); Gini and "
                "coverage of exposure over the catalog"))
    sys.stdout.flush()


def _import_model(spec: str):
    from failwell.errors import InputError, import_spec

    fn = import_spec(spec, what="recommender", usage=f"--model {spec!r}: write module:function.")
    if not callable(fn):
        raise InputError(f"--model {spec!r} is not callable.")
    return fn
