"""The daily report as its readers get it: report.json per the contract and self-contained,
report.md short enough to mail, report.html with the figures, the model panel and one card per
incident quoting the raw lines, checked against the lake and the log files themselves."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import date, timedelta
from pathlib import Path

import markupsafe
import numpy as np
import polars as pl
import pytest

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import load_site, site_from_dict
from mmw_tasks.parse import ingest, rawlines
from mmw_tasks.report import build as report
from mmw_tasks.report import headline as verdicts
from mmw_tasks.report import html as report_html
from mmw_tasks.report import model as report_model
from mmw_tasks.report.model import fit_problems

DAY = "2002-02-16"  # the klez_site day with the outbreak


def _strict_json(text: str):
    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constant)


@pytest.fixture(scope="module")
def rep(klez_site):
    folder = report.report_dir(load_site(klez_site), DAY)
    return {
        "dir": folder,
        "json": _strict_json((folder / "report.json").read_text()),
        "html": (folder / "report.html").read_text(),
        "md": (folder / "report.md").read_text(),
        "con": lake.connect(load_site(klez_site).lake),
    }


def test_json_has_the_contract_and_strict_numbers(rep):
    j = rep["json"]
    assert j["day"] == DAY
    assert set(report.TOTAL_KEYS) <= j["totals"].keys() and set(report.MODEL_KEYS) <= j["model"].keys()
    for i in j["incidents"]:
        assert {"kind", "start", "end", "sender", "client_ip", "score", "evidence"} <= i.keys()
        assert re.search(r"[+-]\d\d:\d\d$", i["start"]), "times carry their offset"
    assert j["model"]["m_s"] is not None


def _planted_worm(site_toml: Path, day: str) -> dict:
    truth = json.loads((site_toml.parent / "truth.json").read_text())
    return next(i for i in truth["days"][day]["incidents"] if i["kind"] == "mmw_suspect")


def test_headline_names_the_infected_host_first_in_every_rendering(rep, klez_site):
    """The verdict opens report.json, report.md and report.html alike: the planted worm's host,
    its name, its span and what gave it away, with the time it was first flagged."""
    j, planted = rep["json"], _planted_worm(klez_site, DAY)
    assert j["headline"] == verdicts.headline(j), "report.json's headline is the shared builder's"
    assert len(j["headline"]) == 1, "the klez day has one incident that needs attention"
    first = j["headline"][0]
    assert first.startswith(f"WORM SUSPECT {planted['client_ip']} ({planted['host']}) 14:30-17:2"), first
    assert re.search(r': [\d,]+ "User unknown", [\d,]+ forged senders, first flagged 14:[0-5]0$', first), first
    assert "None" not in first
    # incidents most severe first: the worm is number 1, benign traffic after it
    kinds = [i["kind"] for i in j["incidents"]]
    assert kinds[0] == "mmw_suspect" and j["incidents"][0]["number"] == 1
    assert [i["number"] for i in j["incidents"]] == list(range(1, len(kinds) + 1))
    assert set(kinds[1:]) <= {"bulk_sender", "mailing_list"}
    # report.md: the title, then the headline before anything else
    md_lines = [ln for ln in rep["md"].splitlines() if ln.strip()]
    assert md_lines[0].startswith("# ") and first in md_lines[1]


def test_headline_of_a_quiet_day_and_of_every_kind():
    """The builder is a function of report.json's dict: each kind's line reads as an
    administrator would say it, most severe first; a quiet day has none."""
    quiet = {"incidents": [{"kind": "mailing_list", "score": 0.05, "evidence": {}, "start": None}]}
    assert verdicts.headline(quiet) == [] and verdicts.verdict(quiet) == [verdicts.QUIET]
    assert verdicts.QUIET == "no incident needs attention"
    tz = "+09:00"
    surge = {
        "kind": "deferred_surge",
        "domain": "bigisp.ne.jp",
        "score": 1.0,
        "start": f"2002-02-15T16:30:00{tz}",
        "end": f"2002-02-15T23:10:00{tz}",
        "evidence": {
            "deferred": 2085,
            "deliveries": 3266,
            "usual_daily_deferrals": 22.0,
            "first_flagged": f"2002-02-15T13:50:00{tz}",
        },
    }
    dns = {
        "kind": "dns_anomaly",
        "client_ip": "10.1.0.25",
        "reverse_name": None,
        "score": 1.0,
        "start": f"2002-02-15T01:10:00{tz}",
        "end": f"2002-02-15T02:00:00{tz}",
        "evidence": {"source": "mail_server", "excess_queries": 3632, "predicted_queries": 276},
    }
    worm = {
        "kind": "mmw_suspect",
        "client_ip": "10.1.3.172",
        "reverse_name": "pc172.example.ac.jp",
        "sender": "imai65@example.ac.jp",
        "score": 1.0,
        "start": f"2002-02-15T23:25:00{tz}",
        "end": f"2002-02-16T01:15:03{tz}",
        "evidence": {
            "messages": 361,
            "user_unknown": 0,
            "novel_recipients": 286,
            "signals": [{"feature": "novel_recipients", "value": 286, "points": 0.15, "says": "..."}],
            "first_flagged": f"2002-02-15T23:40:00{tz}",
        },
    }
    bulk = {"kind": "bulk_sender", "score": 0.65, "client_ip": "10.1.2.70", "evidence": {"messages": 664}}
    assert verdicts.headline({"incidents": [bulk, dns, surge, worm]}) == [
        "WORM SUSPECT 10.1.3.172 (pc172.example.ac.jp) 23:25-02-16 01:15: 361 messages, "
        "286 recipients never mailed before, first flagged 23:40",
        "DEFERRED SURGE bigisp.ne.jp 16:30-23:10: 2,085 of 3,266 deliveries deferred "
        "(usually about 22 a day), first flagged 13:50",
        "DNS ANOMALY mail server 10.1.0.25 01:10-02:00: 3,908 DNS queries where its mail explains about 276",
    ]
    assert [i["kind"] for i in verdicts.ordered([bulk, dns, surge, worm])] == [
        "mmw_suspect",
        "deferred_surge",
        "dns_anomaly",
        "bulk_sender",
    ]


def test_worm_incident_card_names_host_and_quotes_its_lines(rep):
    worms = [i for i in rep["json"]["incidents"] if i["kind"] == "mmw_suspect"]
    assert worms, "the klez day has a suspected worm-infected host"
    w = worms[0]
    assert w["client_ip"] and w["reverse_name"], "who: the host and its reverse name"
    assert w["raw_lines"] and all(ln["text"] for ln in w["raw_lines"])
    for ln in w["raw_lines"]:
        # the quoted text is the line at that number of that file, read here independently
        opener = gzip.open if Path(ln["file"]).read_bytes()[:2] == b"\x1f\x8b" else open
        with opener(ln["file"], "rt", errors="replace") as fh:
            actual = fh.read().splitlines()[ln["line_no"] - 1]
        assert ln["text"] == actual
        assert w["client_ip"] in actual or "User unknown" in actual or "user unknown" in actual.lower()
    body = _section(rep["html"], f'<article class="incident-card kind-mmw_suspect" id="incident-{w["number"]}"')
    title = re.search(r"<h3>.*?</h3>", body, re.S).group(0)
    assert f"{w['client_ip']} ({w['reverse_name']})" in _text(title)
    # why, in the detector's own sentences, then the evidence and the lines behind <details>
    for signal in w["evidence"]["signals"]:
        assert markupsafe.escape(signal["says"]) in body
    assert f"{w['score']:.2f} of 1" in _text(body)
    assert body.count("<details") == 2 and "<details open" not in body
    for ln in w["raw_lines"]:
        assert markupsafe.escape(ln["text"]) in body


def _section(page: str, opening: str) -> str:
    """The element that starts with `opening`, up to its closing tag."""
    tag = re.match(r"<(\w+)", opening).group(1)
    m = re.search(re.escape(opening) + rf".*?</{tag}>", page, re.S)
    assert m, f"no {opening} in the page"
    return m.group(0)


def _text(page: str) -> str:
    """What a reader sees of a page or a part of it: its text, without the style sheet or the
    figures' markup."""
    page = re.sub(r"<style>.*?</style>|<svg.*?</svg>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_attention_cards_then_benign_lines_and_a_marker_each(rep):
    """Suspects get a card; benign traffic one line each (its card behind <details>); every
    panel of Figure 1 marks each incident: a span across the plot for the worm, a strip along
    the top for benign traffic."""
    page, incidents = rep["html"], rep["json"]["incidents"]
    attention = [i for i in incidents if i["kind"] in report.ATTENTION]
    benign = [i for i in incidents if i["kind"] not in report.ATTENTION]
    cards = _section(page, '<section id="incidents">')
    assert cards.count("<article") == len(attention) == 1
    lines = _section(page, '<section id="benign">')
    assert lines.count('<li class="incident-line') == len(benign) == 3
    for i in benign:
        li = _section(lines, f'<li class="incident-line kind-{i["kind"]}" id="incident-{i["number"]}"')
        summary = _text(_section(li, "<summary>"))
        assert " ".join(summary.split()) == f"{i['number']}. {verdicts.benign_line(i)}"
    assert page.index('id="incidents"') < page.index('id="benign"') < page.index('id="figure1"')
    fig1 = _section(page, '<section id="figure1">')
    assert fig1.count("<svg") == 3 and fig1.count("<polyline") >= 3
    assert fig1.count('class="incident-marker"') == 3 * len(attention)
    assert fig1.count('class="incident-marker strip"') == 3 * len(benign)


def test_a_long_benign_band_never_hides_the_suspect(rep):
    """A mailing list's 12-hour band over the worm's: the worm's span is drawn across the whole
    plot, over the benign strip, which is 5 px high along the top; the curves over both."""
    j = json.loads(json.dumps(rep["json"]))
    worm = next(i for i in j["incidents"] if i["kind"] == "mmw_suspect")
    long_list = next(i for i in j["incidents"] if i["kind"] == "mailing_list")
    long_list["start"], long_list["end"] = f"{DAY}T08:00:00+09:00", f"{DAY}T20:00:00+09:00"
    assert long_list["start"] < worm["start"] < worm["end"] < long_list["end"]
    page = report_html.render(j)
    charts = re.findall(r"<svg.*?</svg>", _section(page, '<section id="host-figure">'), re.S)
    charts += re.findall(r"<svg.*?</svg>", _section(page, '<section id="figure1">'), re.S)
    assert len(charts) == 5
    for chart in charts:
        marks = re.findall(r'<g class="incident-marker( strip)?" data-incident="incident-(\d+)">.*?<rect [^>]*>', chart)
        order = [int(n) for _, n in marks]
        assert order.index(worm["number"]) > order.index(long_list["number"]), "the suspect is drawn last"
        rects = {
            int(n): dict(re.findall(r'(\w+)="([^"]+)"', r))
            for n, r in re.findall(r'data-incident="incident-(\d+)">.*?(<rect [^>]*>)', chart)
        }
        axis = re.search(r'<line class="axis" x1="[^"]+" x2="[^"]+" y1="([^"]+)"', chart).group(1)
        span, strip = rects[worm["number"]], rects[long_list["number"]]
        assert float(span["y"]) + float(span["height"]) == pytest.approx(float(axis)), "the whole plot's height"
        assert float(strip["height"]) <= 5 and float(strip["y"]) == float(span["y"])
        assert chart.index('data-incident="incident-') < chart.index("<polyline"), "curves over the bands"


def test_figure1_plots_the_lake_intervals_as_counts(rep):
    """The Dq polyline's highest point is the interval with the most DNS queries, and the axis
    counts queries per 10-minute interval (what the papers plot), not per second."""
    iv = rep["con"].sql("select dq from intervals where day = $d order by interval_start", params={"d": DAY}).pl()
    fig1 = _section(rep["html"], '<section id="figure1">')
    first_svg = fig1.split("</svg>")[0]
    polylines = re.findall(r'<polyline[^>]*points="([^"]+)"', first_svg)
    points = [tuple(map(float, p.split(","))) for poly in polylines for p in poly.split()]
    assert len(points) == iv.height
    top = min(range(len(points)), key=lambda k: points[k][1])  # smallest y is highest
    assert iv["dq"][top] == iv["dq"].max()
    assert "Dq per 10 min" in first_svg and "s⁻¹" not in rep["html"]
    ticks = [
        float(t.replace(",", "")) for t in re.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]+)<', first_svg)
    ]
    assert max(ticks) >= iv["dq"].max() > 0.5 * max(ticks), "the y axis reaches the largest count"


def test_host_figure_draws_the_suspects_own_n_smtp_under_the_headline(rep):
    """Under the headline: Dq above the worm host's own N_SMTP(i), its from= and to= lines per
    interval as user_intervals counts them, whatever senders it forged."""
    j, con = rep["json"], rep["con"]
    worm = next(i for i in j["incidents"] if i["kind"] == "mmw_suspect")
    page = rep["html"]
    assert page.index('id="verdict"') < page.index('id="host-figure"') < page.index('id="incidents"')
    fig = _section(page, '<section id="host-figure">')
    assert worm["client_ip"] in _text(_section(fig, "<h2>"))
    want = con.sql(
        "select epoch(interval_start), sum(n_from + n_to) as n from user_intervals where day = $d and client_ip = $ip "
        "group by all order by n desc, 1 limit 1",
        params={"d": DAY, "ip": worm["client_ip"]},
    ).fetchone()
    curve = next(c for c in j["figures"]["hosts"] if c["client_ip"] == worm["client_ip"])
    smtp = [a + b for a, b in zip(curve["n_from"], curve["n_to"], strict=True)]
    assert max(smtp) == want[1] and len(smtp) == len(j["intervals"])
    peak_at = j["intervals"][smtp.index(max(smtp))]["interval_start"]
    assert report_html._t(peak_at).timestamp() == want[0]
    assert f'data-label="N_SMTP(#{worm["number"]} {worm["client_ip"]})' in fig
    assert worm["start"] <= peak_at <= worm["end"], "its peak is inside its span"


def test_no_field_names_and_no_none_for_a_reader(rep):
    """What a reader sees says things in words: no Python None, no internal field names."""
    for shown in (_text(rep["html"]), rep["md"]):
        assert not re.search(r"\bNone\b|\bnull\b", shown)
        for field in ("peak_messages_per_interval", "near_constant_share", "recipients_attempted", "n_user_unknown"):
            assert field not in shown
    worm = next(i for i in rep["json"]["incidents"] if i["kind"] == "mmw_suspect")
    card = _text(
        _section(rep["html"], f'<article class="incident-card kind-mmw_suspect" id="incident-{worm["number"]}"')
    )
    peak = worm["evidence"]["peak_messages_per_interval"]
    assert f"most messages in one 10-minute interval {peak:,}" in " ".join(card.split())


def test_many_benign_incidents_collapse_into_one_table(rep):
    """Beyond [report] benign_lines, benign incidents are counted by kind in one table."""
    page = report_html.render(rep["json"], benign_lines=1)
    assert _section(page, '<section id="benign">').count('<li class="incident-line') == 1
    table = _text(_section(page, '<table class="benign-rest">'))
    lists = [i for i in rep["json"]["incidents"] if i["kind"] == "mailing_list"]
    assert "2 more benign incidents" in " ".join(table.split())
    row = re.search(r"Mailing list traffic\s+(\d+)\s+([\d,]+)", table)
    assert int(row.group(1)) == len(lists) == 2
    assert int(row.group(2).replace(",", "")) == sum(i["evidence"]["messages"] for i in lists)
    assert "- and 2 more: mailing list traffic" in report.markdown(rep["json"], benign_lines=1)


def test_figure2_top_sources_match_mail_events(rep):
    j, con = rep["json"], rep["con"]
    tops = j["figures"]["top_sources"]
    assert 1 <= len(tops) <= 6
    by_host = con.sql(
        """select client_ip, count(*) as n from mail_events
                         where day = $d and event = 'from' and client_ip is not null
                         group by all order by n desc, client_ip limit 1""",
        params={"d": DAY},
    ).fetchone()
    assert (tops[0]["client_ip"], tops[0]["total_from"]) == by_host
    assert sum(tops[0]["n_from"]) == tops[0]["total_from"]
    total = [r["n_from"] for r in j["intervals"]]
    for s in tops:  # nobody sends more than everybody
        assert all(a <= b for a, b in zip(s["n_from"], total, strict=True))
    fig2 = re.search(r'<section id="figure2">.*?</section>', rep["html"], re.S).group(0)
    assert fig2.count("<svg") == 2 and "total N_SMTP" in fig2 and "Deferred" in fig2


def test_model_panel_observed_against_fitted(rep):
    j = rep["json"]
    m = j["model"]
    for r in j["intervals"][:20]:
        assert r["dq_fitted"] == pytest.approx(m["m_s"] * r["n_from"] + m["m_p"] * r["n_pop"], abs=1e-2)
    panel = re.search(r'<section id="model">.*?</section>', rep["html"], re.S).group(0)
    assert "Dq fitted" in panel and "history band" in panel and 'class="diagonal"' in panel


def test_report_is_self_contained_and_rebuilt_from_json_alone(rep):
    html = rep["html"]
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), "nothing fetched at view time"
    assert report_html.render(rep["json"]) == html
    assert report.markdown(rep["json"]) == rep["md"]


def test_page_escapes_what_the_logs_say(rep):
    """A sender, a reason or a raw line from the logs is text on the page, never markup: the
    templates autoescape."""
    hostile = json.loads(json.dumps(rep["json"]))
    i = hostile["incidents"][0]
    i["sender"] = '<script>alert("x")</script>@evil.example'
    i["evidence"]["signals"][0]["says"] = "<img src=x onerror=alert(1)>"
    i["raw_lines"][0]["text"] = "Feb 16 <b>bold</b> & 'quoted'"
    page = report_html.render(hostile)
    assert "<script" not in page and "<img" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page and "&lt;b&gt;bold&lt;/b&gt; &amp;" in page


def test_templates_ship_with_the_package():
    """An installed mmw finds its page templates: every file of mmw_tasks/report/templates is
    in the package data pyproject.toml declares."""
    import fnmatch
    import tomllib

    root = Path(report_html.__file__).parent
    globs = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["mmw_tasks.report"]
    files = [p.relative_to(root).as_posix() for p in (root / "templates").iterdir()]
    assert {"templates/report.html.j2", "templates/trends.html.j2"} <= set(files)
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


def test_links_to_previous_and_next_day(rep):
    html = rep["html"]
    prev = re.search(r'<a rel="prev" href="([^"]+)"', html).group(1)
    nxt = re.search(r'<a rel="next" href="([^"]+)"', html).group(1)
    assert (rep["dir"] / prev).resolve() == (rep["dir"].parent / "day=2002-02-15" / "report.html").resolve()
    assert (rep["dir"] / prev).is_file(), "the day before was run too"
    assert nxt == "../day=2002-02-17/report.html"
    assert (rep["dir"] / rep["json"]["links"]["trends"]).resolve() == rep["dir"].parent / "trends.html"


def test_markdown_is_short_enough_to_mail(rep):
    md, j = rep["md"], rep["json"]
    assert len(md) < 8000 and md.count("\n") < 120
    worm = next(i for i in j["incidents"] if i["kind"] == "mmw_suspect")
    assert worm["client_ip"] in md and j["headline"][0] in md


def test_raw_lines_from_plain_and_gzip_files(tmp_path):
    lines = [f"line {k}" for k in range(1, 5001)]
    plain, gz = tmp_path / "messages", tmp_path / "messages.1.gz"
    plain.write_text("\n".join(lines) + "\n")
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    got = rawlines.read_lines(
        [(str(plain), 1), (str(plain), 4321), (str(gz), 5000), (str(gz), 7000), (str(tmp_path / "gone"), 3)]
    )
    assert got == {
        (str(plain), 1): "line 1",
        (str(plain), 4321): "line 4321",
        (str(gz), 5000): "line 5000",
        (str(gz), 7000): None,
        (str(tmp_path / "gone"), 3): None,
    }


def test_a_host_logged_under_two_names_as_often_gets_the_earlier(tmp_path):
    """The reverse name the report prints for a host is the name it was logged under most; on a
    tie the earlier one, wherever the parser put the rows (a sender that is not ASCII takes
    the expression path, whose rows come after the kernel's in the batch)."""
    site = site_from_dict(
        {
            "site": {"name": "t", "timezone": "UTC", "lake": "lake", "local_domains": ["example.jp"]},
            "servers": [{"name": "mx", "role": "mail", "format": "sendmail", "source": "mx*"}],
        },
        tmp_path / "site.toml",
    )
    tail = "size=321, class=0, nrcpts=1, msgid=<x@y>, proto=ESMTP, daemon=MTA, relay={} [192.0.2.8]"
    lines = [
        "Feb 16 09:00:00 mx sendmail[1]: g1G1000000001: from=<t\u00e4ro@example.jp>, " + tail.format("a.example.jp"),
        "Feb 16 14:00:00 mx sendmail[1]: g1G1000000002: from=<jiro@example.jp>, " + tail.format("b.example.jp"),
    ]
    (tmp_path / "mx").write_text("\n".join(lines) + "\n")
    ingest.parse_server_day(site, site.servers[0], date(2002, 2, 16), [tmp_path / "mx"])
    con = lake.connect(site.lake)
    names = sqlfiles.query(con, "report/reverse_names", {"day": date(2002, 2, 16), "client_ips": ["192.0.2.8"]})
    assert names.fetchall() == [("192.0.2.8", "a.example.jp")]


def _fits_lake(tmp_path: Path, m_s: list[float], m_p: list[float] | None = None, r2: list[float] | None = None) -> Path:
    """A site whose lake holds only model_fits, one day per value from 2002-01-01 (a Tuesday);
    m_p 1.0 and R² 0.97 unless given."""
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nname = "fits"\ntimezone = "UTC"\nlocal_domains = ["x.jp"]\nlake = "lake"\n'
        '[[servers]]\nname = "mx"\nrole = "mail"\nformat = "sendmail"\nsource = "none*"\n'
    )
    start = date(2002, 1, 1)
    for k, v in enumerate(m_s):
        lake.write_frame(
            pl.DataFrame(
                {
                    "site": ["fits"],
                    "m_s": [v],
                    "m_p": [m_p[k] if m_p else 1.0],
                    "r2": [r2[k] if r2 else 0.97],
                    "q": [0.5],
                    "n": [(v - 2) / 2],
                    "m_sd": [None],
                    "r2_sd": [None],
                    "n_intervals": [144],
                },
                schema_overrides={"m_sd": pl.Float64, "r2_sd": pl.Float64},
            ),
            lake.part_path(tmp_path / "lake", "model_fits", start + timedelta(days=k)),
        )
    return site


def test_drift_alert_when_m_s_leaves_its_band(tmp_path):
    rng = np.random.default_rng(3)
    usual = list(8.4 + rng.normal(0, 0.08, 30))
    site = load_site(_fits_lake(tmp_path, [*usual, 11.0]))
    con = lake.connect(site.lake)
    start = date(2002, 1, 1)
    last = start + timedelta(days=30)  # a Thursday
    h = report.history_of(con, site, last)
    # the band: centred on the weekdays among the 28 days before, as wide as every one of those
    # days strays from the median of its own kind (weekdays, weekends)
    window = [(start + timedelta(days=k), v) for k, v in enumerate(usual) if k >= 2]
    hist = np.array([v for d, v in window if d.weekday() < 5])
    ends = np.array([v for d, v in window if d.weekday() >= 5])
    assert (len(hist), len(ends)) == (20, 8)
    med = float(np.median(hist))
    strays = np.concatenate([np.abs(hist - med), np.abs(ends - np.median(ends))])
    half = 4.0 * 1.4826 * float(np.median(strays))
    c = h["coefficients"]["m_s"]
    assert c["median"] == pytest.approx(med) and c["hi"] == pytest.approx(med + half)
    assert c["history_days"] == 20 and c["day_kind"] == "weekday"
    assert h["drift"] == ["m_s", "n"] and not h["too_short"]
    notes = report.history_notes(h, 0)
    assert any("Drift: m_s = 11" in n and "20 earlier weekday days" in n and "resolver" in n for n in notes)
    # every ordinary day stays inside its band
    for k in range(10, 30):
        assert report.history_of(con, site, date(2002, 1, 1) + timedelta(days=k))["drift"] == []


def test_a_normal_weekend_is_judged_against_weekends(tmp_path):
    """Weekends fit differently (less mail, more of it automatic: here m_s 7.0 and R² 0.5 against
    8.4 and 0.95 on weekdays). Judged against every earlier day, a normal Sunday left the bands of
    m_s, n and R²; against earlier weekend days it stays inside them, and so does every day."""
    rng = np.random.default_rng(5)
    days = [date(2002, 1, 1) + timedelta(days=k) for k in range(48)]
    weekend = [d.weekday() >= 5 for d in days]
    m_s = [(7.0 if w else 8.4) + rng.normal(0, 0.05) for w in weekend]
    r2 = [(0.5 if w else 0.95) + rng.normal(0, 0.01) for w in weekend]
    site = load_site(_fits_lake(tmp_path, m_s, r2=r2))
    con = lake.connect(site.lake)
    sunday = days[-1]
    assert sunday.weekday() == 6
    h = report.history_of(con, site, sunday)
    assert h["day_kind"] == "weekend" and h["coefficients"]["m_s"]["history_days"] == 8
    assert h["drift"] == [], "a normal Sunday raises no drift"
    mixed = con.sql(  # what the band was before: every earlier day, weekdays and weekends alike
        "select median(m_s), 1.4826 * mad(m_s) from model_fits where day between $a and $b",
        params={"a": sunday - timedelta(days=28), "b": sunday - timedelta(days=1)},
    ).fetchone()
    assert abs(m_s[-1] - mixed[0]) > 4 * mixed[1], "it would have drifted against weekdays too"
    assert all(report.history_of(con, site, d)["drift"] == [] for d in days[28:])


def test_an_unreliable_fit_is_marked_and_left_out_of_the_bands(tmp_path):
    """A fit with a negative coefficient or an R² below [report] min_r2 is unreliable: the report
    says so and why, never alerts drift on it, and no band counts it."""
    n = 36
    m_s = [8.4 + 0.05 * (k % 3) for k in range(n)]
    m_p = [1.0] * n
    r2 = [0.9] * n
    m_p[29], r2[30] = -0.6, 0.05  # two unreliable weekdays (Wed 30 Jan, Thu 31 Jan)
    m_s[29], m_s[30] = 20.0, 21.0  # far outside the band: judged, they would drift
    m_s[34] = 30.0  # a reliable Monday (4 Feb), far off: it drifts
    toml = _fits_lake(tmp_path, m_s, m_p=m_p, r2=r2)
    site = load_site(toml)
    con = lake.connect(site.lake)
    day = date(2002, 1, 1) + timedelta(days=29)
    h = report.history_of(con, site, day)
    assert h["drift"] == [] and h["coefficients"]["m_s"]["reliable"] is False
    model = {"m_s": 20.0, "m_p": -0.6, "r2": 0.9, "q": 0.5, "n": 9.0}
    assert fit_problems(model, site.report.min_r2) == ["m_p = -0.6 is negative"]
    assert fit_problems({**model, "m_p": 1.0, "r2": 0.05}, 0.1) == ["R² = 0.05 is below 0.1"]
    notes = report.history_notes(h, 0, fit_problems(model, site.report.min_r2))
    assert notes[0].startswith("The day's fit is unreliable (m_p = -0.6 is negative)")
    # neither unreliable day widens the band of a later day: the Monday's history leaves them out
    later = report.history_of(con, site, date(2002, 2, 4))
    c = later["coefficients"]["m_s"]
    weekdays = [
        v
        for k, v in enumerate(m_s[:34])
        if k >= 34 - 28 and (date(2002, 1, 1) + timedelta(days=k)).weekday() < 5 and k not in (29, 30)
    ]
    assert c["history_days"] == len(weekdays) and c["median"] == pytest.approx(float(np.median(weekdays)))
    assert later["drift"] and "m_s" in later["drift"]
    # SQL and Python agree on which fits are reliable
    sql_says = dict(
        con.sql(sqlfiles.load("trends/coefficient_bands"), params=report_model.band_params(site))
        .pl()
        .filter(pl.col("coefficient") == "m_s")
        .select("day", "reliable")
        .iter_rows()
    )
    fits = con.sql("select day, m_s, m_p, r2, q, n from model_fits").pl().iter_rows(named=True)
    assert {f["day"]: not fit_problems(f, site.report.min_r2) for f in fits} == sql_says
    assert sorted(d for d, ok in sql_says.items() if not ok) == [date(2002, 1, 30), date(2002, 1, 31)]


def test_short_history_says_so_and_never_alerts(tmp_path):
    site = load_site(_fits_lake(tmp_path, [8.4, 8.5, 8.3, 20.0]))
    h = report.history_of(lake.connect(site.lake), site, date(2002, 1, 4))
    assert h["too_short"] and h["drift"] == [] and h["days_available"] == 3
    assert "too short" in report.history_notes(h, 0)[0]


def test_report_settings_from_the_config(tmp_path):
    from mmw_tasks.config import ConfigError

    base = (
        '[site]\nname = "s"\ntimezone = "UTC"\nlocal_domains = ["x.jp"]\n'
        '[[servers]]\nname = "mx"\nrole = "mail"\nformat = "sendmail"\nsource = "none*"\n'
    )
    cfg = tmp_path / "site.toml"
    cfg.write_text(base + "[report]\nhistory_days = 56\nband_k = 3\n")
    r = load_site(cfg).report
    assert (r.history_days, r.band_k, r.min_history, r.email) == (56, 3.0, 7, None)
    cfg.write_text(base + "[report]\nhistory_dayz = 56\n")
    with pytest.raises(ConfigError, match=r"\[report\]: unknown key 'history_dayz'"):
        load_site(cfg)
    cfg.write_text(base + "[report]\nhistory_days = 2.5\n")
    with pytest.raises(ConfigError, match="key 'history_days' must be an integer"):
        load_site(cfg)
