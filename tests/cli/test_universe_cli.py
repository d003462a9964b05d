"""``madness universe add`` / ``show``: a rejected file stores nothing; a stored one wins."""

from __future__ import annotations

from typer.testing import CliRunner

from lstm_madness.cli import app

runner = CliRunner()


def test_add_rejects_a_bad_file_whole_then_stores_and_shows_a_good_one(db_url, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("symbol,start,end\nJPM,2001-01-02,\nBAC,2001-01-02,2005-03-01\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,start,end\nJPM,2001-01-02,\nBAC,2005-13-01,\n")

    rejected = runner.invoke(app, ["universe", "add", "demo", str(bad), "--db", db_url])
    assert rejected.exit_code == 1
    assert "line 3" in rejected.output and "2005-13-01" in rejected.output
    missing = runner.invoke(app, ["universe", "show", "demo", "--db", db_url])
    assert missing.exit_code == 1 and "no universe 'demo'" in missing.output

    added = runner.invoke(app, ["universe", "add", "Demo", str(good), "--db", db_url])
    assert added.exit_code == 0, added.output
    assert "2 intervals of 2 symbols" in added.output
    # a second, bad file leaves the stored membership as it was
    again = runner.invoke(app, ["universe", "add", "demo", str(bad), "--db", db_url])
    assert again.exit_code == 1
    shown = runner.invoke(app, ["universe", "show", "demo", "--db", db_url])
    assert shown.exit_code == 0, shown.output
    assert "(stored)" in shown.output and "2005-03-01" in shown.output
    assert "Survivorship" not in shown.output


def test_show_falls_back_on_the_bundled_list_with_its_warning(sqlite_url):
    shown = runner.invoke(app, ["universe", "show", "xlf", "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    assert "(bundled): 30 symbols" in shown.output and "JPM" in shown.output
    assert "Survivorship bias" in " ".join(shown.output.split())


def test_add_reads_several_files_as_one_membership_or_stores_none(db_url, tmp_path):
    priced = tmp_path / "membership.csv"
    priced.write_text("symbol,start,end\nJPM,2001-01-02,\nBAC,2001-01-02,2005-03-01\n")
    gone = tmp_path / "members_without_prices.csv"
    gone.write_text("symbol,start,end\nLEH,2001-01-02,2008-09-15\nBAC,2005-03-02,\n")
    clash = tmp_path / "clash.csv"
    clash.write_text("symbol,start,end\nWB,2001-01-02,2008-12-31\nJPM,2004-06-01,\n")

    rejected = runner.invoke(
        app, ["universe", "add", "sp", str(priced), str(clash), "--db", db_url]
    )
    assert rejected.exit_code == 1
    text = " ".join(rejected.output.split())
    assert "clash.csv" in text and "line 3" in text and "2004-06-01" in text
    assert "membership.csv" in text  # the interval it overlaps, with its file
    missing = runner.invoke(app, ["universe", "show", "sp", "--db", db_url])
    assert missing.exit_code == 1  # nothing of either file was stored

    added = runner.invoke(app, ["universe", "add", "sp", str(priced), str(gone), "--db", db_url])
    assert added.exit_code == 0, added.output
    assert "4 intervals of 3 symbols" in added.output
    # no prices are stored: every member is named in the warning, and the run will count them
    assert "LEH" in added.output and "coverage" in " ".join(added.output.split())
