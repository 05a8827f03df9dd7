"""`sluice tokenize`: output format, streaming, and every bad-input path."""

import json
import shutil
import subprocess

import pytest


def _error_line(result):
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr.decode()
    assert lines[0].startswith("sluice: error: "), lines[0]
    return lines[0]


def test_help(run_sluice):
    result = run_sluice("tokenize", "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    for option in ("--model", "--max-length", "--jsonl"):
        assert option in out


def test_one_json_line_per_input_line(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir,
                        input="Hello, world!\n\n[MASK] test\nno newline at the end")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [
        '{"ids":[101,7592,1010,2088,999,102]}',
        '{"ids":[101,102]}',
        '{"ids":[101,103,3231,102]}',
        '{"ids":[101,2053,2047,4179,2012,1996,2203,102]}',
    ]


def test_empty_input_gives_no_output(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir, input="")
    assert result.returncode == 0
    assert result.stdout == b""


def test_jsonl_texts_may_hold_newlines(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir, "--jsonl",
                        input='"a\\nb"\n"\\u00e9t\\u00e9"\n')
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["ids"] for line in result.stdout.decode().splitlines()] == [
        [101, 1037, 1038, 102], [101, 3802, 2063, 102]]


def test_max_length(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir, "--max-length", "4",
                        input="the quick brown fox jumps\n")
    assert result.returncode == 0
    assert json.loads(result.stdout)["ids"] == [101, 1996, 4248, 102]


def test_answers_each_line_before_stdin_closes(sluice_bin, model_dir):
    proc = subprocess.Popen([str(sluice_bin), "tokenize", "--model", str(model_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b'{"ids":[101,7592,102]}\n'
        proc.stdin.write(b"world\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b'{"ids":[101,2088,102]}\n'
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_invalid_utf8_names_the_line(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir, input=b"fine\nalso fine\nbad \xff\xfe\nx\n")
    assert result.returncode == 2
    assert "line 3" in _error_line(result) and "UTF-8" in _error_line(result)
    assert len(result.stdout.decode().splitlines()) == 2  # the lines before it were answered


@pytest.mark.parametrize("line", ["not json", '"unterminated', "42", '["a"]', '{"text": "a"}', ""])
def test_bad_json_line(run_sluice, model_dir, line):
    result = run_sluice("tokenize", "--model", model_dir, "--jsonl", input=f'"ok"\n{line}\n')
    assert result.returncode == 2
    assert "line 2" in _error_line(result)
    assert "not a JSON string" in _error_line(result)


def test_invalid_utf8_inside_json_string(run_sluice, model_dir):
    result = run_sluice("tokenize", "--model", model_dir, "--jsonl", input=b'"a\xffb"\n')
    assert result.returncode == 2
    assert "line 1" in _error_line(result)


def test_missing_model_dir(run_sluice, tmp_path):
    result = run_sluice("tokenize", "--model", tmp_path / "nowhere", input="hi\n")
    assert result.returncode == 2
    assert "tokenizer.json" in _error_line(result)


def test_missing_model_option(run_sluice):
    result = run_sluice("tokenize", input="hi\n")
    assert result.returncode == 2
    assert "--model" in result.stderr.decode()


@pytest.mark.parametrize("contents, message", [
    ("not json at all", "not valid JSON"),
    ('{"model": {"type": "WordPiece", "vocab": {', "not valid JSON"),
    ('{"model": {"type": "Unigram", "vocab": []}}', 'unsupported model type "Unigram"'),
    ('{"model": {"type": "WordPiece"}}', '"vocab" is missing'),
    ('{"pre_tokenizer": {"type": "Metaspace"}, "model": {"vocab": {"[UNK]": 0}}}',
     'unsupported pre_tokenizer type "Metaspace"'),
])
def test_corrupt_tokenizer_json(run_sluice, tmp_path, contents, message):
    (tmp_path / "tokenizer.json").write_text(contents)
    result = run_sluice("tokenize", "--model", tmp_path, input="hi\n")
    assert result.returncode == 2
    line = _error_line(result)
    assert message in line and str(tmp_path / "tokenizer.json") in line


@pytest.mark.parametrize("value", ["1", "0", "-3", "abc"])
def test_bad_max_length(run_sluice, model_dir, value):
    result = run_sluice("tokenize", "--model", model_dir, "--max-length", value, input="hi\n")
    assert result.returncode == 2
    assert result.stdout == b""
