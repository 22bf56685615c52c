"""Training data from a snapshot of the store: SFT prompt-completion examples, DPO pairs, splits by document.

Every answer is the author's own text. Short documents (posts, notes) are one answer each; long ones
(articles) are cut into passages at paragraph boundaries so that each passage fits ``max_length`` with its
prompt. Source files are not the author's writing voice and are skipped; with the opt-in code mix
(``train.code_mix``, `twin train --with-code`) the author's own commits are learned from instead (only the
lines their commits added, see :mod:`twin.commits`): commit message -> code, and docstring -> the function
it documents. Those documents are split on their own, and their held-out examples go to ``code_test.jsonl``
(scored apart, so the prose perplexity stays comparable between adapters with and without code).

The instruction for each answer is written by *instruction back-translation*: extractively by default,
from the title, the platform and the document's top TF-IDF key phrases (scikit-learn, fitted on the
author's whole corpus, so the phrases are what is distinctive about this document); by an LLM when
``settings.agent.chat_model_url`` names an OpenAI-compatible endpoint.

Examples are TRL's *conversational prompt-completion* format (``{"prompt": [user msg], "completion":
[assistant msg]}``): TRL applies the model's own chat template and computes the loss on the completion only.
DPO pairs reuse the prompt: chosen = the author's passage, rejected = the base model's answer to it.

Splits are by document (never by passage), deterministic by seed: a document's split depends only on its
URL and the seed, so adding documents never moves old ones between splits.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from twin.chat import ME, parse_chat
from twin.commits import AuthoredChange, parse_change
from twin.domain import (
    PRIVATE_KINDS,
    Adapter,
    Author,
    Document,
    FeedbackPair,
    Kind,
    Platform,
    TwinError,
    author_folder,
    own_writing,
    validate_author_name,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from twin.settings import Settings
    from twin.store import DocumentStore

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")

EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# International (+CC ...) or North-American style numbers with separators; bare digit runs (years, ids,
# version numbers) are left alone.
PHONE_RE = re.compile(
    r"(?<![\w/.-])(?:\+\d{1,3}[\s.-]?(?:\(?\d{1,4}\)?[\s.-]?){2,4}\d{2,4}"
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w/-])"
)
PARAGRAPH_RE = re.compile(r"\n\s*\n")
PROMPT_TOKEN_BUDGET = 64
"""Tokens kept free for the chat template and the instruction when a long document is cut into passages."""
MIN_PASSAGE_WORDS = 8

RejectedFn = Callable[[str, list[list[dict[str, str]]], int], list[str]]

PLATFORM_NAMES = {
    Platform.linkedin: "LinkedIn post",
    Platform.x: "short post for X",
    Platform.medium: "Medium article",
    Platform.substack: "Substack newsletter post",
    Platform.blog: "blog post",
    Platform.github: "README section",
    Platform.chat: "chat message",
}
CHAT_CONTEXT_TURNS = 4
"""Earlier turns of a conversation kept in a chat example's prompt (the last one is the other side's)."""
MIN_CHAT_ANSWER_WORDS = 2
CODE_BODY_WORDS = 60
"""Words of a commit message's body kept in a code example's instruction (the subject is always kept)."""
CODE_PROMPT_SLACK = 16
"""Tokens kept free beside a code instruction for the chat template."""
MEDIA_MARKER_RE = re.compile(r"^\[(?:media|image|video|audio|sticker|gif|file|poll|contact|location)\]$")


class PromptCompletion(BaseModel):
    """One SFT example, in TRL's conversational prompt-completion format, plus where it came from."""

    prompt: list[dict[str, str]]
    completion: list[dict[str, str]]
    document_id: int
    url: str
    platform: Platform
    kind: Kind
    part: int = 0
    instruction_source: Literal["extractive", "llm"] = "extractive"

    @classmethod
    def of_document(cls, document: Document, prompt: list[dict[str, str]], answer: str, part: int,
                    instruction_source: Literal["extractive", "llm"] = "extractive") -> PromptCompletion:
        """The example whose answer is ``part`` of ``document``'s text."""
        return cls(prompt=prompt, completion=[{"role": "assistant", "content": answer}], document_id=document.id,
                   url=document.url, platform=document.platform, kind=document.kind, part=part,
                   instruction_source=instruction_source)

    @property
    def instruction(self) -> str:
        return self.prompt[-1]["content"]

    @property
    def answer(self) -> str:
        return self.completion[-1]["content"]


class PreferencePair(BaseModel):
    """One DPO pair in TRL's conversational preference format."""

    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]]
    document_id: int
    """The author's document the chosen answer comes from (0 for an inbox preference)."""
    feedback_id: int | None = None
    """Set for a preference the author gave in the inbox (`twin.store.DocumentStore.list_feedback_pairs`)."""


class SplitStats(BaseModel):
    examples: int
    documents: int
    tokens: int
    """Tokens of the chat-formatted prompt and completion together."""
    completion_tokens: int
    per_platform: dict[str, int]
    private_sources: list[str] = Field(default_factory=list)
    """Private chat sources whose conversations are in this split (so the page can say which adapters
    were trained on a chat, and removing the chat finds the snapshots that hold it)."""


class DatasetBundle(BaseModel):
    """Where the JSONL files are, their combined content hash, and the loaded examples."""

    author: str
    out_dir: Path
    dataset_hash: str
    files: dict[str, Path]
    file_hashes: dict[str, str]
    stats: dict[str, SplitStats]
    splits: dict[Split, list[PromptCompletion]]
    dpo: list[PreferencePair] = Field(default_factory=list)
    skipped_documents: int = 0
    code_test: list[PromptCompletion] = Field(default_factory=list)
    """Held-out examples of the author's own code (code mix only): scored for their own perplexity."""


def scrub_pii(text: str) -> str:
    """Replace email addresses and phone numbers with placeholders."""
    return PHONE_RE.sub("[phone]", EMAIL_RE.sub("[email]", text))


def user_prompt(instruction: str) -> list[dict[str, str]]:
    """The chat messages a twin gets for an instruction (also used by serving and perplexity)."""
    return [{"role": "user", "content": instruction}]


def document_rank(url: str, seed: int) -> float:
    """A stable number in [0, 1) for a document: its place in the seed's order of documents."""
    digest = hashlib.sha256(f"{seed}:{url}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    documents: Sequence[Document], seed: int, validation_fraction: float, test_fraction: float
) -> dict[Split, list[Document]]:
    """Split by document: each document's rank in a seeded hash order decides; at least one per split."""
    ordered = sorted(documents, key=lambda d: document_rank(d.url, seed))
    n = len(ordered)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * validation_fraction))
    return {
        "test": ordered[:n_test],
        "validation": ordered[n_test : n_test + n_val],
        "train": ordered[n_test + n_val :],
    }


def pack(pieces: Iterable[str], max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Consecutive pieces joined by blank lines into chunks of at most ``max_tokens`` (a lone longer piece
    stays whole; the trainer truncates it)."""
    out: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for piece in pieces:
        tokens = count_tokens(piece)
        if current and current_tokens + tokens > max_tokens:
            out.append("\n\n".join(current))
            current, current_tokens = [], 0
        current.append(piece)
        current_tokens += tokens + 1
    if current:
        out.append("\n\n".join(current))
    return out


def passages(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Cut text into paragraph-aligned passages of at most ``max_tokens`` (a lone longer paragraph stays
    whole and is truncated by the trainer)."""
    paragraphs = (p for p in (p.strip() for p in PARAGRAPH_RE.split(text)) if p)
    return [p for p in pack(paragraphs, max_tokens, count_tokens) if len(p.split()) >= MIN_PASSAGE_WORDS]


class KeyPhrases:
    """Top TF-IDF unigrams and bigrams of each text, against the author's whole corpus."""

    def __init__(self, corpus: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, 2),
            stop_words="english",
            # words with at most a short numeric tail ("python3"), so hashes and ids never become topics
            token_pattern=r"(?u)\b[A-Za-z][A-Za-z+#.-]*[A-Za-z+#]\d{0,2}\b",
            sublinear_tf=True,
            min_df=1,
            max_df=0.5 if len(corpus) >= 10 else 1.0,
        )
        self.vectorizer.fit(corpus)
        self.vocabulary = self.vectorizer.get_feature_names_out()

    def top(self, text: str, k: int = 3) -> list[str]:
        row = self.vectorizer.transform([text]).tocoo()
        ranked = sorted(zip(row.col, row.data, strict=True), key=lambda item: (-item[1], item[0]))
        phrases: list[str] = []
        for index, _score in ranked:
            phrase = str(self.vocabulary[index])
            # A bigram makes its own words redundant, and vice versa.
            if any(phrase in kept or kept in phrase for kept in phrases):
                continue
            phrases.append(phrase)
            if len(phrases) == k:
                break
        return phrases


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def instruction_text(what: str, title: str | None, topics: Sequence[str], piece: str | None = None) -> str:
    """The one wording of a drafting instruction, shared by training and by the agent at drafting time (a
    small adapter follows the exact form it was tuned on)."""
    about = _join(list(topics)) or "something on your mind"
    if piece:
        return f'Write {piece} titled "{title}", covering {about}.' if title else f"Write {piece} about {about}."
    if title:
        return f'Write a {what} titled "{title}" about {about}.'
    return f"Write a {what} about {about}."


def extractive_instruction(document: Document, phrases: Sequence[str], part: int, parts: int) -> str:
    """An instruction a user might have given to get this text: platform, title and key phrases."""
    what = "short note" if document.kind == Kind.note else PLATFORM_NAMES[document.platform]
    title = (document.title or "").strip() or None
    # The first passage of a long post is asked for like a whole post: at drafting time a twin is asked
    # for a post and writes its opening; later passages say which part they are.
    piece = f"part {part + 1} of {parts} of the {what}" if parts > 1 and part > 0 else None
    return instruction_text(what, title, phrases, piece)


def llm_instruction(settings: Settings, text: str, fallback: str) -> str | None:
    """Ask the configured OpenAI-compatible model for the instruction that would produce ``text``."""
    import httpx

    agent = settings.agent
    if not agent.chat_model_url:
        return None
    headers = {"Authorization": f"Bearer {agent.chat_model_api_key}"} if agent.chat_model_api_key else {}
    body = {
        "model": agent.chat_model_name or "default",
        "temperature": 0,
        "max_tokens": 80,
        "messages": [
            {
                "role": "system",
                "content": "Write the one-sentence request a user would have given a ghostwriter to get the "
                "text below. Mention its platform and topic, not its wording. Reply with the request only.",
            },
            {"role": "user", "content": f"Draft request: {fallback}\n\nText:\n{text[:4000]}"},
        ],
    }
    try:
        response = httpx.post(
            agent.chat_model_url.rstrip("/") + "/chat/completions", json=body, headers=headers, timeout=60
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"].strip()
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return None  # the extractive instruction is always there to fall back on
    return content or None


def _write_jsonl(path: Path, rows: Sequence[BaseModel]) -> str:
    data = "".join(json.dumps(row.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    path.write_text(data, encoding="utf-8")
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _stats(examples: Sequence[PromptCompletion], tokenizer: PreTrainedTokenizerBase) -> SplitStats:
    tokens = completion_tokens = 0
    for ex in examples:
        prompt_ids = tokenizer.apply_chat_template(ex.prompt, add_generation_prompt=True, tokenize=True)
        full_ids = tokenizer.apply_chat_template(ex.prompt + ex.completion, tokenize=True)
        tokens += len(_ids(full_ids))
        completion_tokens += len(_ids(full_ids)) - len(_ids(prompt_ids))
    return SplitStats(
        examples=len(examples),
        documents=len({ex.document_id for ex in examples}),
        tokens=tokens,
        completion_tokens=completion_tokens,
        per_platform=dict(sorted(Counter(ex.platform.value for ex in examples).items())),
    )


def _ids(value: Any) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True)
    return list(value["input_ids"]) if not isinstance(value, list) else value


def usable_documents(documents: Sequence[Document]) -> list[Document]:
    """The author's prose: no code, and no linked reference pages (someone else's writing)."""
    return [d for d in own_writing(documents)
            if d.kind != Kind.code and d.kind not in PRIVATE_KINDS and d.clean_text.strip()]


def chat_turns(text: str) -> list[tuple[bool, str]]:
    """A stored conversation as alternating turns (mine?, text): consecutive messages of one side joined.

    In a group, the other side's messages keep their speaker label (``them 2: ...``) so the author can
    tell who said what; quoted messages (what the author replied to) count as the other side's.
    """
    lines = parse_chat(text)
    group = any(line.speaker not in (ME, "them") for line in lines)
    turns: list[tuple[bool, list[str]]] = []
    for line in lines:
        mine = line.mine and not line.quote
        content = line.text if mine or not group else f"{line.speaker}: {line.text}"
        if turns and turns[-1][0] == mine:
            turns[-1][1].append(content)
        else:
            turns.append((mine, [content]))
    return [(mine, "\n".join(parts)) for mine, parts in turns]


def build_chat_examples(
    documents: Sequence[Document], settings: Settings, tokenizer: PreTrainedTokenizerBase
) -> list[PromptCompletion]:
    """Conversational examples from private chats: each of the author's turns is an answer, what the other
    side said just before it (with up to ``CHAT_CONTEXT_TURNS`` earlier turns) the prompt."""
    budget = max(32, settings.train.max_length // 2)

    def tokens(messages: list[dict[str, str]]) -> int:
        return len(_ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)))

    examples: list[PromptCompletion] = []
    for doc in documents:
        turns = chat_turns(doc.clean_text)
        for index, (mine, text) in enumerate(turns):
            if not mine or index == 0:
                continue
            answer = "\n".join(line for line in text.split("\n") if not MEDIA_MARKER_RE.match(line.strip()))
            answer = scrub_pii(answer) if settings.train.scrub_pii else answer
            if len(answer.split()) < MIN_CHAT_ANSWER_WORDS:
                continue
            context = turns[max(0, index - CHAT_CONTEXT_TURNS) : index]
            while context and context[0][0]:  # a prompt starts with the other side
                context = context[1:]
            prompt = [{"role": "assistant" if was_mine else "user", "content": said} for was_mine, said in context]
            while len(prompt) > 1 and tokens(prompt) > budget:
                prompt = prompt[2:]  # drop the oldest exchange
            prompt[-1]["content"] = prompt[-1]["content"][-1500:]
            examples.append(PromptCompletion.of_document(doc, prompt, answer, index))
    return examples


def authored_code(documents: Sequence[Document]) -> list[tuple[Document, AuthoredChange]]:
    """The author's own committed changes among the documents (whole source files are not among them)."""
    found = []
    for doc in documents:
        if doc.kind is Kind.code and (change := parse_change(doc.clean_text)) is not None:
            found.append((doc, change))
    return found


def code_instruction(change: AuthoredChange, part: int = 0, parts: int = 1) -> str:
    """The request for a change: its commit message, file and language (the one wording, like
    `instruction_text` for prose)."""
    request = f'Write the {change.language} code for the commit "{change.subject}" in {change.path}.'
    body = PARAGRAPH_RE.split(change.body, maxsplit=1)[0].split() if change.body else []
    if body:
        request += " " + " ".join(body[:CODE_BODY_WORDS]) + (" ..." if len(body) > CODE_BODY_WORDS else "")
    if parts > 1:
        request += f" (part {part + 1} of {parts})"
    return request


def docstring_instruction(language: str, what: str, name: str, path: str, docstring: str) -> str:
    summary = " ".join(PARAGRAPH_RE.split(docstring.strip(), maxsplit=1)[0].split())
    return f"Write the {language} {what} `{name}` in {path}: {summary}"


def documented_definitions(change: AuthoredChange) -> list[tuple[str, str, str, str]]:
    """(``function``/``class``, name, docstring, source) of each documented Python definition that one of the
    change's hunks holds whole (a hunk that is part of a definition does not parse and gives none)."""
    if change.language != "python":
        return []
    found = []
    for hunk in change.hunks:
        source = textwrap.dedent(hunk)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.split("\n")
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            docstring = ast.get_docstring(node)
            if not docstring or len(node.body) < 2 or node.end_lineno is None:
                continue  # undocumented, or a docstring and nothing else
            start = min([decorator.lineno for decorator in node.decorator_list] + [node.lineno])
            what = "class" if isinstance(node, ast.ClassDef) else "function"
            found.append((what, node.name, docstring, textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno]))))
    return found


def build_code_examples(
    items: Sequence[tuple[Document, AuthoredChange]], settings: Settings, tokenizer: PreTrainedTokenizerBase
) -> list[PromptCompletion]:
    """Examples from the author's own changes: commit message -> the lines they added (cut into pieces that
    fit ``max_length``), and for Python, docstring -> the whole documented function or class."""

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def scrub(text: str) -> str:
        return scrub_pii(text) if settings.train.scrub_pii else text

    examples: list[PromptCompletion] = []
    for doc, change in items:
        budget = max(32, settings.train.max_length - count_tokens(code_instruction(change)) - CODE_PROMPT_SLACK)
        pieces = pack(change.hunks, budget, count_tokens)
        pairs = [(code_instruction(change, index, len(pieces)), piece) for index, piece in enumerate(pieces)]
        pairs += [(docstring_instruction(change.language, what, name, change.path, docstring), source)
                  for what, name, docstring, source in documented_definitions(change)]
        for index, (instruction, answer) in enumerate(pairs):
            examples.append(PromptCompletion.of_document(doc, user_prompt(scrub(instruction)), scrub(answer), index))
    return examples


def feedback_instruction(pair: FeedbackPair, key_phrases: KeyPhrases | None) -> str:
    """The drafting instruction for an inbox preference, in the form the twin is asked with (the brief as
    title when it is short, as the topic otherwise; like `tools.prompts.brief_instruction`)."""
    what = PLATFORM_NAMES[pair.platform]
    brief = (pair.brief or "").strip()
    if not brief:
        topics = key_phrases.top(pair.chosen) if key_phrases is not None else []
        return instruction_text(what, None, topics)
    words = len(brief.split())
    if words <= 12 or (words <= 16 and not brief.endswith((".", "?", "!"))):
        topics = key_phrases.top(brief) if key_phrases is not None else []
        return instruction_text(what, brief.strip('"“”'), topics)
    return instruction_text(what, None, [brief.rstrip(".")])


def feedback_preferences(
    pairs: Sequence[FeedbackPair], key_phrases: KeyPhrases | None, scrub: bool = True
) -> list[PreferencePair]:
    """The inbox's preferences as DPO pairs: the author's edit or pick chosen, the twin's draft rejected."""
    out = []
    for pair in pairs:
        chosen, rejected = (scrub_pii(pair.chosen), scrub_pii(pair.rejected)) if scrub else (pair.chosen, pair.rejected)
        if chosen.strip() == rejected.strip():
            continue
        out.append(PreferencePair(
            prompt=user_prompt(feedback_instruction(pair, key_phrases)),
            chosen=[{"role": "assistant", "content": chosen}],
            rejected=[{"role": "assistant", "content": rejected}],
            document_id=0,
            feedback_id=pair.id,
        ))
    return out


def check_enough_text(author: str, documents: Sequence[Document], min_words: int) -> int:
    """Raise a TwinError that says how much text there is and how much is needed; return the word count."""
    words = sum(d.word_count for d in documents)
    if words < min_words or len(documents) < 3:
        raise TwinError(
            f"{author} has {words:,} words of text in {len(documents)} documents (code excluded); training "
            f"needs at least {min_words:,} words in at least 3 documents (TWIN_TRAIN__MIN_WORDS). "
            f"Ingest more of {author}'s writing first."
        )
    return words


def build_sft_examples(
    documents: Sequence[Document],
    settings: Settings,
    tokenizer: PreTrainedTokenizerBase,
    key_phrases: KeyPhrases,
) -> list[PromptCompletion]:
    max_passage_tokens = max(32, settings.train.max_length - PROMPT_TOKEN_BUDGET)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    examples: list[PromptCompletion] = []
    for doc in documents:
        text = scrub_pii(doc.clean_text) if settings.train.scrub_pii else doc.clean_text
        parts = passages(text, max_passage_tokens, count_tokens)
        for index, passage in enumerate(parts):
            instruction = extractive_instruction(doc, key_phrases.top(passage), index, len(parts))
            source: Literal["extractive", "llm"] = "extractive"
            written = llm_instruction(settings, passage, instruction)
            if written:
                instruction, source = written, "llm"
            examples.append(PromptCompletion.of_document(doc, user_prompt(instruction), passage, index, source))
    return examples


def _private_sources(store: DocumentStore, documents: Sequence[Document]) -> dict[int, str]:
    """Document id -> the URL of the private source it was imported from."""
    urls: dict[int, str] = {}
    cache: dict[int, str] = {}
    for doc in documents:
        if doc.source_id is None:
            continue
        if doc.source_id not in cache:
            cache[doc.source_id] = store.get_source(doc.source_id).url
        urls[doc.id] = cache[doc.source_id]
    return urls


def generate_rejected(
    model_path: str,
    prompts: list[list[dict[str, str]]],
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[str]:
    """The base model's greedy answers to the prompts (the DPO 'rejected' side), batched, left-padded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = [
            tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
            for p in prompts[start : start + batch_size]
        ]
        inputs = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                repetition_penalty=1.2,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def build_datasets(
    store: DocumentStore,
    author: str,
    settings: Settings,
    out_dir: Path,
    *,
    with_dpo: bool | None = None,
    with_code: bool | None = None,
    model_path: str | None = None,
    rejected_fn: RejectedFn | None = None,
) -> DatasetBundle:
    """Snapshot the author's documents into SFT train/validation/test and DPO JSONL files under ``out_dir``.

    ``rejected_fn(model_path, prompts, max_new_tokens)`` writes the DPO rejected answers; the default
    generates in this process (the training job runs it as a Ray task instead). ``with_code`` (default
    ``train.code_mix``) adds the author's own code.
    Raises TwinError (before writing anything) when the author has too little text, or no code of their own
    when code is asked for.
    """
    from transformers import AutoTokenizer

    from twin.models import resolve_base_model

    train = settings.train
    record = store.get_author(author)
    documents = usable_documents(store.list_documents(record))
    all_documents = own_writing(store.list_documents(record))
    check_enough_text(author, documents, train.min_words)
    code_documents = authored_code(all_documents) if (train.code_mix if with_code is None else with_code) else None
    if code_documents == []:
        raise TwinError(
            f"{author} has no code changes of their own to learn from. Add a repo as a source and say who you "
            "are in commits (TWIN_CRAWL__GIT_IDENTITIES=you@example.com; on github.com the owner's login counts), "
            "collect it again, or train without --with-code."
        )

    model_path = model_path or resolve_base_model(settings)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    key_phrases = KeyPhrases([d.clean_text for d in documents])
    by_split = assign_splits(documents, train.seed, train.validation_fraction, train.test_fraction)
    splits: dict[Split, list[PromptCompletion]] = {
        name: build_sft_examples(by_split[name], settings, tokenizer, key_phrases) for name in SPLITS
    }
    if not splits["train"]:
        raise TwinError(f"{author}'s documents gave no training examples (every passage was too short).")
    # Private chats (imported with --private) are split on their own, so that importing one never moves
    # the author's posts between splits; too few conversations all train.
    chats = [d for d in all_documents if d.kind in PRIVATE_KINDS and d.clean_text.strip()]
    chat_splits: dict[Split, list[Document]] = (
        assign_splits(chats, train.seed, train.validation_fraction, train.test_fraction)
        if len(chats) >= 3 else {"train": chats, "validation": [], "test": []}
    )
    private_source_of = _private_sources(store, chats)
    for name in SPLITS:
        splits[name].extend(build_chat_examples(chat_splits[name], settings, tokenizer))
    # The author's code, split on its own too; held-out code is scored apart from the prose (code_test).
    code_splits: dict[Split, list[tuple[Document, AuthoredChange]]] = {"train": [], "validation": [], "test": []}
    if code_documents:
        change_of = {doc.id: change for doc, change in code_documents}
        by_code_split = (
            assign_splits([doc for doc, _ in code_documents], train.seed, train.validation_fraction, train.test_fraction)
            if len(code_documents) >= 3 else {"train": [doc for doc, _ in code_documents], "validation": [], "test": []}
        )
        code_splits = {name: [(doc, change_of[doc.id]) for doc in by_code_split[name]] for name in SPLITS}
    splits["train"].extend(build_code_examples(code_splits["train"], settings, tokenizer))
    splits["validation"].extend(build_code_examples(code_splits["validation"], settings, tokenizer))
    code_test = build_code_examples(code_splits["test"], settings, tokenizer)

    dpo: list[PreferencePair] = []
    feedback: list[PreferencePair] = []
    if train.dpo if with_dpo is None else with_dpo:
        # The author's own verdicts in the inbox first: they cost no generation.
        feedback = feedback_preferences(store.list_feedback_pairs(record), key_phrases, train.scrub_pii)
        chosen = [ex for ex in splits["train"]
                  if ex.kind not in PRIVATE_KINDS and ex.kind is not Kind.code][: train.dpo_max_pairs]
        rejected = (rejected_fn or generate_rejected)(
            model_path, [ex.prompt for ex in chosen], train.dpo_max_new_tokens
        ) if chosen else []
        dpo = [*feedback, *[
            PreferencePair(
                prompt=ex.prompt,
                chosen=ex.completion,
                rejected=[{"role": "assistant", "content": answer}],
                document_id=ex.document_id,
            )
            for ex, answer in zip(chosen, rejected, strict=True)
            if answer
        ]]

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    file_hashes: dict[str, str] = {}
    for name in SPLITS:
        files[name] = out_dir / f"sft_{name}.jsonl"
        file_hashes[name] = _write_jsonl(files[name], splits[name])
    if dpo:
        files["dpo"] = out_dir / "dpo_train.jsonl"
        file_hashes["dpo"] = _write_jsonl(files["dpo"], dpo)
    if code_test:
        files["code_test"] = out_dir / "code_test.jsonl"
        file_hashes["code_test"] = _write_jsonl(files["code_test"], code_test)
    dataset_hash = hashlib.sha256(
        "".join(f"{name}:{digest}\n" for name, digest in sorted(file_hashes.items())).encode()
    ).hexdigest()
    stats: dict[str, SplitStats] = {name: _stats(splits[name], tokenizer) for name in SPLITS}
    if code_test:
        stats["code_test"] = _stats(code_test, tokenizer)
    for name in SPLITS:
        stats[name].private_sources = sorted({private_source_of[d.id] for d in chat_splits[name]
                                              if d.id in private_source_of and any(
                                                  ex.document_id == d.id for ex in splits[name])})
    used_private = sorted({url for name in SPLITS for url in stats[name].private_sources})
    files["stats"] = out_dir / "stats.json"
    files["stats"].write_text(
        json.dumps(
            {
                "author": author,
                "dataset_hash": dataset_hash,
                "file_hashes": file_hashes,
                "splits": {name: s.model_dump() for name, s in stats.items()},
                "dpo_pairs": len(dpo),
                "feedback_pairs": len(feedback),
                "private_sources": used_private,
                "chat_examples": sum(1 for name in SPLITS for ex in splits[name] if ex.kind in PRIVATE_KINDS),
                "code_examples": {
                    **{name: sum(1 for ex in splits[name] if ex.kind is Kind.code) for name in SPLITS if name != "test"},
                    "test": len(code_test),
                },
                "code_documents": sum(len(items) for items in code_splits.values()),
                "documents_used": len(documents),
                "documents_skipped": len(all_documents) - len(documents),
                "seed": train.seed,
                "scrub_pii": train.scrub_pii,
            },
            indent=2,
        )
    )
    return DatasetBundle(
        author=author,
        out_dir=out_dir,
        dataset_hash=dataset_hash,
        files=files,
        file_hashes=file_hashes,
        stats=stats,
        splits=splits,
        dpo=dpo,
        skipped_documents=len(all_documents) - len(documents),
        code_test=code_test,
    )


def adapter_dataset_dir(settings: Settings, author: Author, adapter: Adapter) -> Path | None:
    """The dataset snapshot the adapter was trained on (`training.job` writes it under the job id, in the
    author's id folder; adapters trained before that have it under a folder named after the author)."""
    job_id = str(adapter.metrics.get("job_id") or "")
    if not job_id:
        return None
    folders = [author_folder(author)]
    with contextlib.suppress(TwinError):
        if validate_author_name(author.name) == author.name:  # never a path that leaves datasets_dir
            folders.append(author.name)
    for folder in folders:
        path = settings.datasets_dir / folder / job_id[:8]
        if (path / "sft_test.jsonl").exists() and (path / "sft_train.jsonl").exists():
            return path
    return None
