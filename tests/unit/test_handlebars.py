"""The Handlebars subset Slack's templates are rendered with (engine.destinations.handlebars):
output as handlebars.js gives it, and a TemplateError for what it does not understand."""

import pytest

from engine import codec
from engine.destinations.handlebars import TemplateError, parse, render

DATA = codec.decode(
    b'{"name": "A<b>&\'\\"=`", "favorite color": "black", "n": null, "zero": 0,'
    b' "p": {"key1": "v1", "o": {"a": 1}, "list": [1, "x", null, true], "f": 1.50,'
    b' "big": 1e21, "small": 1e-7, "t": true, "empty": [], "items": [{"sku": "A"}, {"sku": "B"}]}}'
)


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{name}}", "A&lt;b&gt;&amp;&#x27;&quot;&#x3D;&#x60;"),
        ("{{{name}}} {{&name}}", "A<b>&'\"=` A<b>&'\"=`"),
        ('{{"favorite color"}} {{[favorite color]}}', "black black"),
        ("{{p.key1}} {{p/key1}} {{this.p.key1}} {{missing.deep}}", "v1 v1 v1 "),
        ("{{n}}|{{zero}}|{{p.t}}|{{p.f}}|{{p.big}}|{{p.small}}", "|0|true|1.5|1e+21|1e-7"),
        ("{{{p.list}}} {{{p.o}}} {{p.list.length}} {{p.list.1}}", '1,x,,true {"a":1} 4 x'),
        ("a{{newline}}b", "a\nb"),
        ("{{#if p.t}}y{{else}}n{{/if}} {{#if zero}}y{{else}}n{{/if}}", "y n"),
        ("{{#if p.empty}}a{{else if n}}b{{else if p.t}}c{{else}}d{{/if}}", "c"),
        ("{{#unless n}}none{{^}}some{{/unless}} {{^p.empty}}empty{{/p.empty}}", "none empty"),
        ("{{#each p.items}}{{@index}}:{{sku}}{{#unless @last}}, {{/unless}}{{/each}}", "0:A, 1:B"),
        ("{{#each p.o}}{{@key}}={{this}} {{../p.key1}} {{@root.zero}}{{/each}}", "a=1 v1 0"),
        ("{{#each p.empty}}x{{else}}nothing{{/each}}", "nothing"),
        ("{{#with p}}{{key1}}{{/with}} {{#p}}{{key1}}{{/p}}", "v1 v1"),
        ("a {{~! note ~}} b {{!-- {{name}} --}}c", "ab c"),
        ("\\{{name}}", "{{name}}"),
        ("{{constructor}}{{name.__class__}}{{p.key1.upper}}", ""),
    ],
)
def test_renders_as_handlebars_does(template: str, text: str) -> None:
    assert render(template, DATA) == text


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{{p. key1}}", "cannot read {{p. key1}}"),
        ("{{name key1}}", "name is not a helper"),
        ("{{lookup p 'key1'}}", "lookup is not a helper"),
        ("x\n{{#if p}}", "{{#if}} is not closed (line 2)"),
        ("{{#if p}}{{/each}}", "does not close the block of if"),
        ("{{/if}}", "without a block"),
        ("{{> partial}}", "partials"),
        ("{{#each p as |item|}}{{/each}}", "cannot read"),
        ("{{#if a b}}{{/if}}", "#if takes one value"),
        ("{{name", "is not closed"),
        ("{{}}", "empty"),
        ("{{a..b}}", "cannot read"),
    ],
)
def test_what_it_cannot_read_is_an_error(template: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse(template)


def test_output_is_bounded() -> None:
    many = {"items": list(range(10_000))}
    text = render("{{#each items}}{{#each ../items}}x{{/each}}{{/each}}", many, limit=500)
    assert text == "x" * 500


def test_a_comment_ends_at_the_first_closing_dashes_and_braces() -> None:
    assert render("a{{!-- a -- b --}}c {{!-- x }} y --~}}  d", DATA) == "ac d"
    with pytest.raises(TemplateError, match="comment --}} is not closed"):
        parse("{{!-- a -- }}")


def test_nested_each_over_long_lists_is_stopped_by_the_step_budget() -> None:
    """Without a budget this takes seconds of CPU for one event, though it shows nothing."""
    many = {"items": list(range(2000))}
    template = "{{#each items}}{{#each ../items}}{{#each ../../items}}{{/each}}{{/each}}{{/each}}"
    with pytest.raises(TemplateError, match="more than 100,000 steps"):
        render(template, many)
    assert render("{{#each items}}{{/each}}", many) == ""  # 2,000 steps: well within
    with pytest.raises(TemplateError, match="more than 10 steps"):
        render("{{#each items}}x{{/each}}", many, steps=10)


def test_blocks_nested_too_deep_are_refused_when_read() -> None:
    deep = "{{#if a}}" * 300 + "x" + "{{/if}}" * 300
    with pytest.raises(TemplateError, match="nested more than 64 deep"):
        parse(deep)
    chain = "{{#if a}}" + "{{else if a}}" * 300 + "{{/if}}"
    with pytest.raises(TemplateError, match="nested more than 64 deep"):
        parse(chain)
    fits = "{{#with p}}" * 64 + "{{key1}}" + "{{/with}}" * 64
    assert render(fits, {"p": {"key1": "v", "p": None}}) == ""
    assert render("{{#with p}}" * 2 + "{{key1}}" + "{{/with}}" * 2,
                  {"p": {"p": {"key1": "v"}}}) == "v"  # fmt: skip
