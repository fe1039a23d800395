"""The `gcseg` console script's help text."""

from typer.testing import CliRunner

from stages.cli import app, reflow


def test_reflow_joins_the_lines_of_a_paragraph_and_keeps_paragraphs_and_lists():
    doc = """Stage 2 data: tracking and lifting (plus, on the diagnosed scenes,
    the diagnostics).

    Second paragraph,
    two lines.

    - a list item
    - another
    """
    assert reflow(doc) == ("Stage 2 data: tracking and lifting (plus, on the diagnosed scenes, the diagnostics).\n\n"
                           "Second paragraph, two lines.\n\n- a list item\n- another")


def test_command_table_has_no_docstring_line_breaks():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # one line at this width: the docstring's break after "scenes," no longer splits the command table's entry
    assert "(plus, on the diagnosed scenes, the label-quality diagnostics" in result.output
