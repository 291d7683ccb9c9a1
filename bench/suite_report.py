"""The suite's report: medians, cairn/DVC ratios and targets from every round's numbers.

``summarize(results)`` turns the raw rounds into table rows (each with the numbers it
shows and whether its target is met); ``markdown(results, rows)`` renders them. Times
are medians over rounds; peak RSS is the largest seen over rounds (the kernel's
``ru_maxrss`` of the command's process tree, see suite_lib).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from suite_lib import MIB

TARGET_RSS = 256 * MIB


def med(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else float("nan")


def _side(rounds: list[dict], *keys: str) -> list[dict]:
    """The dict at ``keys`` in every round that has it."""
    out = []
    for r in rounds:
        x = r
        for k in keys:
            x = x.get(k) if isinstance(x, dict) else None
            if x is None:
                break
        if x is not None:
            out.append(x)
    return out


def _timing(samples: list[dict]) -> dict | None:
    if not samples:
        return None
    return {
        "wall_s": med(s["wall_s"] for s in samples),
        "cpu_s": med(s["cpu_s"] for s in samples),
        "peak_rss": max(s["peak_rss"] for s in samples),
        "n": len(samples),
    }


def _ratio(c: float | None, d: float | None) -> float | None:
    if c is None or d is None or not d or math.isnan(c) or math.isnan(d):
        return None
    return c / d


def _row(
    case: str,
    dvc: dict | None,
    cairn: dict | None,
    target: str,
    met: bool | None,
    *,
    unit: str = "s",
    dvc_text: str | None = None,
    cairn_text: str | None = None,
    ratio: float | None = None,
    note: str = "",
) -> dict:
    if ratio is None and dvc and cairn:
        ratio = _ratio(cairn["wall_s"], dvc["wall_s"])
    return {
        "case": case,
        "dvc": dvc,
        "cairn": cairn,
        "dvc_text": dvc_text if dvc_text is not None else (_fmt_s(dvc) if dvc else "-"),
        "cairn_text": cairn_text if cairn_text is not None else (_fmt_s(cairn) if cairn else "-"),
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }


def _fmt_s(t: dict) -> str:
    return f"{t['wall_s']:.2f} s"


def _speed_target(c: dict | None, d: dict | None, times: float) -> bool | None:
    r = _ratio(c["wall_s"] if c else None, d["wall_s"] if d else None)
    return None if r is None else r <= 1 / times


def summarize(res: dict) -> dict:
    """Table rows for the main table, the memory table and the metadata table."""
    rows: list[dict] = []
    memory: list[dict] = []
    meta: list[dict] = []
    if "A" in res["cases"]:
        _rows_a(res["cases"]["A"], rows, memory)
    if "B" in res["cases"]:
        _rows_b(res["cases"]["B"], rows, memory)
    if "P" in res["cases"]:
        _rows_p(res["cases"]["P"], rows)
    if "M" in res["cases"]:
        _rows_m(res["cases"]["M"], meta, memory)
        _rows_m_main(meta, rows)
    return {"main": rows, "memory": memory, "metadata": meta}


def _rows_a(a: dict, rows: list, memory: list) -> None:
    r = a["rounds"]
    n, size = a["files"], a["bytes"] / MIB
    cp = _timing(_side(r, "cp"))
    first_c, first_d = _timing(_side(r, "cairn", "first")), _timing(_side(r, "dvc", "first"))
    rows.append(
        _row(
            f"A. `cp -r` of {n:,} files, {size:.0f} MiB (reference)",
            None,
            cp,
            "-",
            None,
            note="a plain copy: the floor for a first put",
        )
    )
    rows.append(
        _row(
            f"A. put {n:,} files of 1-20 KiB ({size:.0f} MiB), first time",
            first_d,
            first_c,
            ">= 8x faster (cairn/DVC <= 0.125)",
            _speed_target(first_c, first_d, 8),
            note=f"cairn/`cp -r` = {_ratio(first_c['wall_s'], cp['wall_s']):.2f}; `cp -r` "
            f"rounds: {', '.join(format(x['wall_s'], '.2f') for x in _side(r, 'cp'))} s"
            if first_c and cp
            else "",
        )
    )
    again_c, again_d = _timing(_side(r, "cairn", "again")), _timing(_side(r, "dvc", "again"))
    rows.append(
        _row(
            "A. put again, nothing changed",
            again_d,
            again_c,
            ">= 10x faster (<= 0.1)",
            _speed_target(again_c, again_d, 10),
        )
    )
    ch_c, ch_d = _timing(_side(r, "cairn", "change")), _timing(_side(r, "dvc", "change"))
    k = a["change_files"] // 2
    rows.append(
        _row(
            f"A. {k} files modified + {k} new, put again",
            ch_d,
            ch_c,
            ">= 10x faster (<= 0.1)",
            _speed_target(ch_c, ch_d, 10),
        )
    )
    gc = med(g["apparent"] for g in _side(r, "cairn", "change_growth"))
    gd = med(g["apparent"] for g in _side(r, "dvc", "change_growth"))
    limit = a["change_bytes"] * 1.1
    rows.append(
        _row(
            f"A. store growth for that change ({a['change_bytes'] / MIB:.2f} MiB of changed files)",
            None,
            None,
            f"<= changed bytes + 10% ({limit / MIB:.2f} MiB)",
            None if math.isnan(gc) else gc <= limit,
            dvc_text="-" if math.isnan(gd) else f"+{gd / MIB:.2f} MiB",
            cairn_text="-" if math.isnan(gc) else f"+{gc / MIB:.2f} MiB",
            ratio=None if math.isnan(gd) or not gd else gc / gd,
        )
    )
    mem = a["memory"]
    memory.append(
        _mem_row(
            "A. first put (peak of the put command)",
            n,
            first_c,
            mem["files"],
            mem["cairn"],
            first_d,
            mem.get("dvc"),
            "files",
        )
    )


def _rows_b(b: dict, rows: list, memory: list) -> None:
    r = b["rounds"]
    fmib, total = b["file_bytes"] / MIB, b["bytes"]
    first_c, first_d = _timing(_side(r, "cairn", "first")), _timing(_side(r, "dvc", "first"))

    def rate(t: dict | None) -> str:
        return f"{t['wall_s']:.2f} s ({total / MIB / t['wall_s']:.0f} MiB/s)" if t else "-"

    rows.append(
        _row(
            f"B. put {b['files']} files of {fmib:.0f} MiB, first time",
            first_d,
            first_c,
            ">= 600 MiB/s",
            None if not first_c else total / MIB / first_c["wall_s"] >= 600,
            dvc_text=rate(first_d),
            cairn_text=rate(first_c),
        )
    )
    ed_c, ed_d = _timing(_side(r, "cairn", "edit")), _timing(_side(r, "dvc", "edit"))
    pm = b["patch_bytes"] / MIB
    rows.append(
        _row(
            f"B. {pm:.0f} MiB overwritten in the middle of one file, put again",
            ed_d,
            ed_c,
            "-",
            None,
        )
    )
    gc = med(g["apparent"] for g in _side(r, "cairn", "edit_growth"))
    gd = med(g["apparent"] for g in _side(r, "dvc", "edit_growth"))
    limit = 2 * b["patch_bytes"]
    rows.append(
        _row(
            "B. store growth for that edit",
            None,
            None,
            f"<= {limit / MIB:.0f} MiB",
            None if math.isnan(gc) else gc <= limit,
            dvc_text="-" if math.isnan(gd) else f"+{gd / MIB:.2f} MiB",
            cairn_text="-" if math.isnan(gc) else f"+{gc / MIB:.2f} MiB",
            ratio=None if math.isnan(gd) or not gd else gc / gd,
        )
    )
    mem = b["memory"]
    memory.append(
        _mem_row(
            "B. first put (peak of the put command)",
            f"4 x {fmib:.0f} MiB",
            first_c,
            f"4 x {mem['file_bytes'] / MIB:.0f} MiB",
            mem["cairn"],
            first_d,
            mem.get("dvc"),
            "file size",
        )
    )


def _mem_row(
    case: str,
    scale1,
    t1: dict | None,
    scale2,
    m2: dict,
    d1: dict | None,
    d2: dict | None,
    what: str,
) -> dict:
    c1 = t1["peak_rss"] if t1 else None
    c2 = m2["peak_rss"]
    met = None
    if c1 is not None:
        met = max(c1, c2) <= TARGET_RSS and abs(c1 - c2) <= max(16 * MIB, 0.1 * min(c1, c2))
    return {
        "case": case,
        "what": what,
        "scale1": scale1,
        "scale2": scale2,
        "cairn1": c1,
        "cairn2": c2,
        "dvc1": d1["peak_rss"] if d1 else None,
        "dvc2": d2["peak_rss"] if d2 else None,
        "met": met,
    }


def _rows_p(p: dict, rows: list) -> None:
    r = p["rounds"]
    n, k = p["datums"], p["changed"]
    full_d, ch_d = _timing(_side(r, "dvc", "full")), _timing(_side(r, "dvc", "change"))

    def dps(t: dict | None, count: int | None) -> str:
        if not t:
            return "-"
        return (
            f"{t['wall_s']:.1f} s ({count / t['wall_s']:.3g} datums/s)"
            if count
            else f"{t['wall_s']:.1f} s"
        )

    for mode, title in (("datum", "process per datum"), ("batch", "datum batching")):
        runs = _side(r, "cairn", mode)
        unsupported = [x for x in runs if "unsupported" in x]
        if unsupported:
            rows.append(
                _row(
                    f"P. cairn {title}",
                    None,
                    None,
                    "-",
                    None,
                    cairn_text="not run",
                    note="unsupported by this cairn: " + unsupported[0]["unsupported"],
                )
            )
            continue
        if not runs:
            continue
        full_c = _timing(_side(runs, "full"))
        ch_c = _timing(_side(runs, "change"))
        processed = [x["change"]["processed"] for x in runs]
        only_changed = all(x == k for x in processed)
        rows.append(
            _row(
                f"P. full run over {n:,} one-file datums, cairn {title}",
                full_d,
                full_c,
                "no slower than DVC (<= 1)",
                None if not (full_c and full_d) else full_c["wall_s"] <= full_d["wall_s"],
                dvc_text=dps(full_d, n),
                cairn_text=dps(full_c, n),
            )
        )
        rows.append(
            _row(
                f"P. {k} inputs changed (1%), rerun, cairn {title}",
                ch_d,
                ch_c,
                ">= 20x faster (<= 0.05); only changed datums",
                None
                if not (ch_c and ch_d)
                else (ch_c["wall_s"] * 20 <= ch_d["wall_s"] and only_changed),
                dvc_text=dps(ch_d, n),
                cairn_text=dps(ch_c, k),
                note=f"cairn processed {sorted(set(processed))} datums, skipped "
                f"{sorted({x['change']['skipped'] for x in runs})}; DVC reran all {n:,}",
            )
        )


def _rows_m(m: dict, meta: list, memory: list) -> None:
    built = []
    for s in m["sizes"]:
        if "skipped" in s:
            meta.append({"n": s["n"], "skipped": s["skipped"]})
            continue
        b, o = s["build"], s["ops"]
        ok = max(o["commit_median_s"], o["diff_median_s"], o["list_median_s"]) <= 0.1
        meta.append(
            {
                "n": b["files"],
                "shape": f"{b['folders']} x {b['per_folder']}",
                "build_s": b["build_s"],
                "build_rate": b["files_per_s"],
                "build_rss": b["process"]["peak_rss"],
                "commit_ms": o["commit_median_s"] * 1e3,
                "tree_bytes": o["commit_new_tree_bytes_median"],
                "diff_ms": o["diff_median_s"] * 1e3,
                "list_ms": o["list_median_s"] * 1e3,
                "ops_rss": o["process"]["peak_rss"],
                "met": ok,
            }
        )
        built.append(meta[-1])
    if len(built) >= 2:
        lo, hi = built[0], built[-1]
        memory.append(
            {
                "case": "M. commit, diff, list (peak of the process)",
                "what": "files",
                "scale1": f"{hi['n']:,}",
                "scale2": f"{lo['n']:,}",
                "cairn1": hi["ops_rss"],
                "cairn2": lo["ops_rss"],
                "dvc1": None,
                "dvc2": None,
                "met": max(hi["ops_rss"], lo["ops_rss"]) <= TARGET_RSS
                and abs(hi["ops_rss"] - lo["ops_rss"]) <= max(16 * MIB, 0.1 * lo["ops_rss"]),
            }
        )


def _rows_m_main(meta: list, rows: list) -> None:
    """The metadata targets in the main table: the three operations at the largest n, and
    how new tree bytes per commit grow with n."""
    built = [x for x in meta if "skipped" not in x]
    if not built:
        return
    top = built[-1]
    for key, what in (
        ("commit_ms", "commit one changed file"),
        ("diff_ms", "diff two commits"),
        ("list_ms", "list one folder"),
    ):
        rows.append(
            _row(
                f"M. {what}, repo of {top['n']:,} files",
                None,
                None,
                "<= 100 ms",
                top[key] <= 100,
                cairn_text=f"{top[key]:.1f} ms",
            )
        )
    steps = []
    ok = True
    for lo, hi in zip(built, built[1:], strict=False):
        grew = hi["tree_bytes"] / lo["tree_bytes"] if lo["tree_bytes"] else float("inf")
        # O(log n): bytes grow by about log(n_hi)/log(n_lo); allow half as much again.
        allowed = 1.5 * math.log(hi["n"]) / math.log(lo["n"])
        ok = ok and grew <= allowed
        steps.append(
            f"x{grew:.2f} from {lo['n']:,} to {hi['n']:,} files (log n: x{allowed / 1.5:.2f})"
        )
    rows.append(
        _row(
            "M. new tree bytes per one-file commit as n grows",
            None,
            None,
            "O(log n)",
            ok if steps else None,
            cairn_text=" / ".join(f"{x['tree_bytes']:,} B" for x in built),
            note="; ".join(steps) + " (sqrt(n) folders of sqrt(n) files: the folder node and the "
            "root each hold about sqrt(n) entries, so a commit rewrites O(sqrt n) bytes)"
            if steps
            else "",
        )
    )


# -- markdown -----------------------------------------------------------------------------
def _yes(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / MIB:.0f}"


def markdown(res: dict, table: dict) -> str:
    m = res["machine"]
    opts = res["options"]
    dirty = ", working tree differs from HEAD" if m["cairn_src_dirty"] else ""
    lines = [
        "# cairn vs DVC: the benchmark suite (issue 3)",
        "",
        "Made by `make bench` (`python bench/suite.py`); see `bench/README.md` for what each "
        "case does. Raw numbers, every round: `bench/results/suite.json`.",
        "",
        f"- Date: {res['date']}; total run {res['total_wall_s'] / 60:.1f} min; options: scale "
        f"{opts['scale']}, repeat {opts['repeat']} (P: {opts['p_repeat']}), cases "
        f"{','.join(opts['only'])}, seed {opts['seed']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / (1 << 30):.1f} GiB RAM; "
        f"disk: {m['disk']}; {m['platform']}; Python {m['python']}",
        f"- cairn {m['cairn_version']} at commit {m['cairn_commit'][:12]} (source sha256 "
        f"{m['cairn_src_sha256']}{dirty}"
        f"); DVC {m['dvc_version']}; {m['git_version']}; datum sandbox: {m['sandbox']}",
        f"- Load average (1, 5, 15 min) at the start: "
        f"{', '.join(f'{x:.2f}' for x in res['loadavg_start'])}; at the end: "
        f"{', '.join(f'{x:.2f}' for x in res['loadavg_end'])}. The machine was shared: wall "
        "times are noisy, CPU times (below) less so.",
        "- Times are wall seconds of one CLI command (start-up included), the median of the "
        "rounds; rounds start from fresh stores and alternate which tool goes first. Store "
        "growth: bytes under `$CAIRN_HOME/objects` vs `.dvc/cache`.",
        "",
        "| case | DVC | cairn | cairn/DVC | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in table["main"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(
            f"| {r['case']} | {r['dvc_text']} | {r['cairn_text']} | {ratio} "
            f"| {r['target']} | {_yes(r['met'])} |"
        )
    notes = [r for r in table["main"] if r["note"]]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {r['case']}: {r['note']}" for r in notes]
    lines += [
        "",
        "## CPU time and peak memory of the timed commands",
        "",
        "| case | DVC CPU s | cairn CPU s | CPU cairn/DVC | DVC peak RSS MiB "
        "| cairn peak RSS MiB | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table["main"]:
        d, c = r["dvc"], r["cairn"]
        if not (d or c):
            continue
        cpu_ratio = _ratio(c["cpu_s"] if c else None, d["cpu_s"] if d else None)
        dcpu = f"{d['cpu_s']:.2f}" if d else "-"
        ccpu = f"{c['cpu_s']:.2f}" if c else "-"
        rcpu = "-" if cpu_ratio is None else f"{cpu_ratio:.3f}"
        lines.append(
            f"| {r['case']} | {dcpu} | {ccpu} | {rcpu} "
            f"| {_mib(d['peak_rss'] if d else None)} | {_mib(c['peak_rss'] if c else None)} "
            f"| {(c or d)['n']} |"
        )
    if table["metadata"]:
        lines += [
            "",
            "## M. Metadata at scale (Python API, `cairn.Client`; no DVC column)",
            "",
            "Each operation's median over the repeats, timed inside one process; new tree "
            "bytes = growth of `objects/trees` for one commit that changes one file.",
            "",
            "| files | folders x files | build s (files/s) | build peak MiB | commit one file ms "
            "| new tree bytes per commit | diff two commits ms | list one folder ms "
            "| ops peak MiB | each <= 100 ms? |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for x in table["metadata"]:
            if "skipped" in x:
                lines.append(f"| {x['n']:,} | not run: {x['skipped']} | | | | | | | | |")
                continue
            lines.append(
                f"| {x['n']:,} | {x['shape']} | {x['build_s']:.1f} ({x['build_rate']:,.0f}) "
                f"| {_mib(x['build_rss'])} | {x['commit_ms']:.1f} | {x['tree_bytes']:,} "
                f"| {x['diff_ms']:.1f} | {x['list_ms']:.1f} | {_mib(x['ops_rss'])} "
                f"| {_yes(x['met'])} |"
            )
    if table["memory"]:
        lines += [
            "",
            "## Peak memory at two scales (target: cairn <= 256 MiB, independent of file size "
            "and count)",
            "",
            "| case | scale 1 | cairn MiB | DVC MiB | scale 2 | cairn MiB | DVC MiB | met? |",
            "|---|---|---:|---:|---|---:|---:|---|",
        ]
        for x in table["memory"]:
            lines.append(
                f"| {x['case']} | {x['scale1']} {x['what']} | {_mib(x['cairn1'])} "
                f"| {_mib(x['dvc1'])} | {x['scale2']} {x['what']} | {_mib(x['cairn2'])} "
                f"| {_mib(x['dvc2'])} | {_yes(x['met'])} |"
            )
        lines += [
            "",
            '"Independent" is read as: the two peaks differ by at most 16 MiB or 10%.',
        ]
    if res.get("notes"):
        lines += ["", "## Notes on this run", ""] + [f"- {n}" for n in res["notes"]]
    return "\n".join(lines) + "\n"
