"""Notebook 00 and the course guide: glossary, chapter map, titles and Next links of every notebook."""
import re

import nbformat
import pandas as pd
import pytest

from labkit import course, guide

from conftest import NOTEBOOKS

GLOSSARY = guide.load_glossary()
COURSE_MAP = guide.load_course_map()
CHAPTER_NOTEBOOKS = list(guide.NOTEBOOK_SECTIONS)           # 01 … 09
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+\.ipynb)\)")


def _cells(stem):
    return nbformat.read(str(NOTEBOOKS / f"{stem}.ipynb"), as_version=4).cells


def test_glossary_is_complete_and_well_formed():
    assert len(GLOSSARY) >= 40
    assert (GLOSSARY != "").all().all(), "every glossary cell is filled"
    assert not GLOSSARY["zh"].duplicated().any() and not GLOSSARY["en"].str.lower().duplicated().any()
    assert all(re.search(r"[\u4e00-\u9fff]", zh) for zh in GLOSSARY["zh"]), "every zh term holds Chinese"
    assert set(GLOSSARY["notebook"]) <= {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}


@pytest.mark.parametrize("row", GLOSSARY.to_dict("records"), ids=lambda r: r["en"])
def test_glossary_term_appears_in_its_notebook(row):
    text = guide.notebook_text(row["notebook"])
    assert guide.term_in_text(row["zh"], row["en"], text), \
        f"neither {row['zh']!r} nor {row['en']!r} appears in {row['notebook']}.ipynb"


def test_term_match_is_case_insensitive_and_can_fail():
    assert guide.term_in_text("生成器", "Generator", "the generator maps z")
    assert guide.term_in_text("生成器", "xyz", "这是生成器")
    assert not guide.term_in_text("判别器", "discriminator", "the generator maps z")


def test_chapter_sections_parser(tmp_path):
    chapter = tmp_path / "ch.md"
    chapter.write_text("# 第11章\n## 11.1 概述\n### 11.1.1 定义\n#### 11.2.2.1 GAN（对抗）\n"
                       "### 11.5 总结\n### 11.5 结论\n# 生成器模型\nplain 11.9 text\n", encoding="utf-8")
    assert guide.chapter_sections(chapter) == {"11.1": ["概述"], "11.1.1": ["定义"],
                                               "11.2.2.1": ["GAN（对抗）"], "11.5": ["总结", "结论"]}


def test_every_chapter_section_is_in_the_course_map():
    chapter = guide.find_chapter()
    if chapter is None:
        pytest.skip("the chapter's Markdown is not on this machine (set LABKIT_CHAPTER)")
    sections = guide.chapter_sections(chapter)
    assert len(sections) >= 20
    mapped = dict(zip(COURSE_MAP["section"], COURSE_MAP["zh_title"]))
    missing = sorted(set(sections) - set(mapped))
    assert not missing, f"chapter sections missing from data/course_map.csv: {missing}"
    for number, titles in sections.items():
        assert mapped[number] in titles, f"{number}: map says {mapped[number]!r}, chapter says {titles}"


def test_course_map_points_to_real_notebooks_and_is_honest():
    stems = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")} | {"README"}
    for row in COURSE_MAP.itertuples():
        named = [s.strip() for s in row.notebook.split(";")]
        if row.coverage == "missing":
            assert named == ["—"] and row.note, f"{row.section}: a missing section says why"
        else:
            assert set(named) <= stems, f"{row.section}: unknown notebook {named}"
        if row.coverage == "part":
            assert row.note, f"{row.section}: a partly covered section says what is left out"
    assert COURSE_MAP.loc[COURSE_MAP["section"] == "11.3.2.1", "note"].str.contains("detection").all()


@pytest.mark.parametrize("stem", CHAPTER_NOTEBOOKS)
def test_title_cell_names_sections_and_prerequisites(stem):
    title = _cells(stem)[0].source
    assert title.startswith(f"# {stem[:2]} "), "the title cell comes first"
    for section in guide.NOTEBOOK_SECTIONS[stem]:
        assert guide.section_label(section, COURSE_MAP) in title, f"{section} with its Chinese title"
    assert "**Prerequisites:**" in title and "(00_start_here.ipynb)" in title
    for needed in guide.PREREQUISITES[stem]["needs"]:
        assert f"({needed}.ipynb)" in title


ALL_NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("stem", ALL_NOTEBOOKS)
def test_last_cell_ends_with_a_next_link_to_an_existing_notebook(stem):
    last = _cells(stem)[-1]
    assert last.cell_type == "markdown"
    final = last.source.strip().split("\n\n")[-1]
    links = LINK.findall(final)
    assert links, f"{stem}: the last paragraph links the next notebook"
    assert all((NOTEBOOKS / link).is_file() for link in links), links
    if stem == ALL_NOTEBOOKS[-1]:
        assert "end of the course" in final and "00_start_here.ipynb" in links
    else:
        assert final.startswith("**Next:**")
        assert links[0] > f"{stem}.ipynb", "Next goes forward"


def test_notebook_09_ends_with_the_course_wrap_up():
    sources = [c.source for c in _cells("09_privacy")]
    wrap = next(i for i, s in enumerate(sources) if s.startswith("## Where the chapter ends"))
    text = "\n".join(sources[wrap:])
    for needed in ["11.4.2.1", "11.4.2.2", "11.4.2.3", "11.5", "medical imaging", "security",
                   "guide.wrapup_table("]:
        assert needed in text, needed
    assert not re.search(r"\d\.\d{2,}", "\n".join(sources[wrap:wrap + 2])), "no typed measurements"


def test_wrapup_table_reads_metrics_and_says_when_a_notebook_was_not_run(tmp_path):
    from labkit import files

    (tmp_path / "04_gan").mkdir()
    files.write_json(tmp_path / "04_gan" / "metrics.json", {
        "notebook": "04_gan", "profile": "lab", "elapsed_s": 123.4,
        "metrics": {"fid_dcgan": 12.345, "fid_real_floor": 2.0}, "targets": {}})
    table = guide.wrapup_table(tmp_path)
    assert list(table.index) == [lesson[0] for lesson in guide.LESSONS]
    assert "fid_dcgan = 12.3" in table.loc["04_gan", "measured here"]
    assert "123 s" in table.loc["04_gan", "cost on a laptop CPU"]
    assert table.loc["05_vae", "measured here"].startswith("not run yet")
    assert "README" in table.loc["05_vae", "cost on a laptop CPU"]


def test_readme_points_to_00_and_lists_every_run_time():
    times = guide.readme_run_times()
    assert set(CHAPTER_NOTEBOOKS) <= set(times) and "00_start_here" in times
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    notebooks_section = readme.split("## The notebooks", 1)[1]
    assert "00_start_here" in notebooks_section.split("|", 1)[0], "a line before the table points to 00"


def test_search_and_study_order():
    assert set(guide.search(GLOSSARY, "隐私")["notebook"]) >= {"09_privacy"}
    assert len(guide.search(GLOSSARY, "GAN")) >= 2 and guide.search(GLOSSARY, "zzzz").empty
    order = guide.study_order()
    assert list(order.index) == CHAPTER_NOTEBOOKS
    assert "11.2.2.2 生成模型（如VAE）" in order.loc["05_vae", "chapter sections"]


def test_course_tools_include_00_first():
    assert course.notebooks()[0].stem == "00_start_here"
    assert [p.stem for p in course.notebooks(["00"])] == ["00_start_here"]


@pytest.mark.notebook
def test_smoke_run_records_the_map_and_glossary(smoke_run):
    metrics, outdir = smoke_run("00_start_here")
    m = metrics["metrics"]
    assert metrics["profile"] == "smoke" and metrics["notebook"] == "00_start_here"
    assert m["glossary_terms"] == len(GLOSSARY) and m["glossary_terms_taught_share"] == 1
    assert m["chapter_sections_mapped"] == COURSE_MAP["section"].str.startswith("11").sum()
    assert sum(m[f"sections_{c}"] for c in guide.COVERAGE) == m["chapter_sections_mapped"]
    if guide.find_chapter() is not None:
        assert m["chapter_sections_unmapped"] == 0 and m["chapter_titles_differing"] == 0
    from labkit.run import meets
    assert all(meets(m[n], t) for n, t in metrics["targets"].items())


def test_a_section_is_full_only_if_all_its_subsections_are():
    numbered = COURSE_MAP[COURSE_MAP["section"].str.startswith("11")]
    for row in numbered.itertuples():
        children = numbered[numbered["section"].str.startswith(row.section + ".")]
        if row.coverage == "full":
            assert (children["coverage"] == "full").all(), f"{row.section} is full but a subsection is not"


def test_text_table_left_aligns_every_cell():
    table = pd.DataFrame({"a": ["one long sentence", "two"], "b": [1.5, 2.0]}, index=["x", "x"])  # repeated index
    html = guide.text_table(table).to_html()
    assert html.count("text-align: left") >= 2 and "one long sentence" in html
