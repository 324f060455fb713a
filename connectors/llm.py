"""A language model behind :class:`diagnose.domain.reasoning.Reasoner`, over the OpenAI chat API.

Any OpenAI-compatible ``/v1/chat/completions`` endpoint works; the defaults suit MiniMax M2.7
served by vLLM (see ``docs/llm.md`` for the serve flags and the sources of each choice):

- Sampling: ``temperature=1.0``, ``top_p=0.95`` and a top-level ``top_k=40`` (what the OpenAI
  SDK's ``extra_body`` sends), as MiniMax recommends.
- Interleaved thinking: M2.x must see its earlier reasoning in every later turn. With vLLM's
  ``minimax_m2`` reasoning parser the reasoning arrives in ``message.reasoning`` (or
  ``reasoning_content`` on older vLLM) and is sent back on the assistant message under the same
  name; with ``minimax_m2_append_think`` it stays inside ``content`` as ``<think>…</think>`` and
  goes back as it came, secrets aside. :meth:`Reply.as_message` does both.
- The model's own earlier words (content, reasoning, tool-call arguments), sent back in a tool
  turn or a repair turn, pass through the project's one redactor
  (:mod:`diagnose.domain.redaction`) first, like every other text that leaves the process.
- Requests are never streamed (vLLM's MiniMax tool parser has had streaming bugs), and tool
  arguments carry ids only: a raw ``</parameter>`` in an argument truncates it, so evidence is
  fetched on our side (:class:`~diagnose.domain.reasoning.EvidenceToolbox`) and sent back fenced.
- The answer is a call of the named function :data:`~diagnose.domain.reasoning.ANSWER_TOOL`
  with a strict JSON schema (``tool_choice`` names it), validated by us, with one repair turn.

:class:`ChatClient` is the one choke point for timeouts, retries, auth and error translation
(to :class:`~diagnose.domain.errors.SourceError`). :class:`OpenAIReasoner` runs one bounded
session per diagnosis and never raises for the model's or the server's failures: its
:class:`~diagnose.domain.reasoning.Reasoning` says what happened.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import httpx

from connectors import _http
from diagnose import settings as config
from diagnose import telemetry
from diagnose.domain import answers, errors, reasoning, redaction
from diagnose.domain.models import JSON

SOURCE = "llm"


class Message(TypedDict, total=False):
    """One chat message as the OpenAI chat completions API takes it (its field names)."""

    role: Required[str]  # system, user, assistant or tool
    content: Required[str | None]
    reasoning: str  # an assistant turn's reasoning, sent back under the name it came with
    reasoning_content: str
    tool_calls: list[dict[str, JSON]]  # ToolCall.to_openai() of each
    tool_call_id: str  # a tool turn: the call it answers


_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_REASONING_KEYS = ("reasoning", "reasoning_content")
_MAX_ANSWER_CHARS = 8000
_NOT_RUN = f"not run: answer by calling {reasoning.ANSWER_TOOL}"
DIGEST_SHARE = 0.15
"""The share of the prompt budget the digest may take: every later turn re-sends it, and the
default budget must hold a tool turn, the answer and its repair."""


@dataclass(frozen=True)
class Sampling:
    """How the model samples. Defaults: MiniMax's recommendation for M2.x."""

    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int | None = 40
    max_completion_tokens: int = 4096

    def body(self) -> dict[str, JSON]:
        fields: dict[str, JSON] = {"temperature": self.temperature, "top_p": self.top_p}
        if self.top_k is not None:
            fields["top_k"] = self.top_k
        return fields


@dataclass(frozen=True)
class ToolCall:
    """One function call in an answer; ``arguments`` is the JSON string as the server sent it."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, JSON]:
        function: dict[str, JSON] = {"name": self.name, "arguments": _redacted_arguments(self)}
        return {"id": self.id, "type": "function", "function": function}


def _redacted_arguments(call: ToolCall) -> str:
    """The arguments with every string in them redacted; still JSON when they were JSON, and
    spelled as the model spelled them when they held no secret."""
    try:
        parsed = json.loads(call.arguments)
    except (ValueError, RecursionError):
        return redaction.redact(call.arguments)
    cleared = _redact_strings(parsed)
    return call.arguments if cleared == parsed else json.dumps(cleared)


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redaction.redact(value)
    if isinstance(value, dict):
        return {redaction.redact(str(k)): _redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v) for v in value]
    return value


@dataclass(frozen=True)
class Reply:
    """One assistant answer of a chat completion."""

    content: str | None
    reasoning: str | None = None
    reasoning_key: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def call_named(self, name: str) -> ToolCall | None:
        return next((c for c in self.tool_calls if c.name == name), None)

    def as_message(self) -> Message:
        """The assistant turn to send back, redacted: ``content`` (``<think>`` and all), the
        reasoning under the name it arrived with, and the tool calls with their arguments."""
        content = redaction.redact(self.content) if self.content is not None else None
        message: Message = {"role": "assistant", "content": content}
        if self.reasoning is not None and self.reasoning_key == "reasoning":
            message["reasoning"] = redaction.redact(self.reasoning)
        elif self.reasoning is not None and self.reasoning_key == "reasoning_content":
            message["reasoning_content"] = redaction.redact(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        return message


class ChatClient:
    """An OpenAI-compatible chat endpoint: one choke point for timeouts, retries and auth."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        retry: _http.RetryPolicy | None = None,
        sampling: Sampling | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.sampling = sampling or Sampling()
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._retry = retry or _http.RetryPolicy(attempts=3, budget_s=timeout_s)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=self._timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def list_models(self) -> list[str]:
        """The model ids the server serves (``GET /models``)."""
        data = self._request("GET", "models", body=None, timeout_s=None)
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise errors.SourceRejected(
                f"{self.base_url}/models did not list models: {data!r:.200}"
            )
        return [str(m.get("id")) for m in models if isinstance(m, dict)]

    def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[reasoning.ToolSpec] = (),
        tool_choice: JSON = None,
        max_tokens: int | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """One non-streamed chat completion."""
        body = self._body(messages, tools=tools, tool_choice=tool_choice, max_tokens=max_tokens)
        return parse_reply(
            self._request("POST", "chat/completions", body=body, timeout_s=timeout_s)
        )

    def _body(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[reasoning.ToolSpec],
        tool_choice: JSON,
        max_tokens: int | None,
    ) -> dict[str, JSON]:
        limit = min(
            max_tokens or self.sampling.max_completion_tokens, self.sampling.max_completion_tokens
        )
        body: dict[str, JSON] = {
            "model": self.model,
            "messages": list(messages),
            "stream": False,
            "max_tokens": limit,
        } | self.sampling.body()
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
            body["tool_choice"] = tool_choice or "auto"
        return body

    def _request(self, method: str, path: str, *, body: JSON, timeout_s: float | None) -> JSON:
        """The one way out to the server, in a telemetry span (GenAI attributes for a chat)."""
        with telemetry.model_call(
            base_url=self.base_url, path=path, method=method, body=body
        ) as call:
            data = self._send(method, path, body=body, timeout_s=timeout_s)
            call.answered(data)
            return data

    def _send(self, method: str, path: str, *, body: JSON, timeout_s: float | None) -> JSON:
        timeout = self._timeout if timeout_s is None else _shrink(self._timeout, timeout_s)

        def attempt() -> httpx.Response:
            response = self._http.request(method, path, json=body, timeout=timeout)
            if response.status_code in _RETRIED_STATUSES:
                response.raise_for_status()
            return response

        try:
            response = _http.call_with_retries(attempt, policy=self._retry, retryable=_retryable)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc, path=path) from exc
        return self._decode(response, path=path)

    def _decode(self, response: httpx.Response, *, path: str) -> JSON:
        url = f"{self.base_url}/{path}"
        if response.status_code >= 400:
            raise errors.SourceRejected(
                f"the model server at {url} answered {response.status_code}: {response.text:.300}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise errors.SourceRejected(
                f"the model server at {url} answered with something other than JSON: "
                f"{response.text[:200]!r}"
            ) from exc

    def _unavailable(self, exc: httpx.HTTPError, *, path: str) -> errors.SourceUnavailable:
        url = f"{self.base_url}/{path}"
        if isinstance(exc, httpx.HTTPStatusError):
            detail = f"answered {exc.response.status_code} on every try: {exc.response.text:.200}"
        elif isinstance(exc, httpx.TimeoutException):
            detail = "did not answer in time (raise DIAGNOSE_LLM_TIMEOUT_S for a slow model)"
        else:
            detail = f"could not be reached ({exc}); check DIAGNOSE_LLM_BASE_URL"
        return errors.SourceUnavailable(f"the model server at {url} {detail}")


def _retryable(exc: Exception) -> bool:
    """Refusals and 429/5xx are worth another try; a read timeout already cost a whole timeout."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in _RETRIED_STATUSES
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.RemoteProtocolError)


def _shrink(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    seconds = max(seconds, 0.001)
    read = min(timeout.read or seconds, seconds)
    return httpx.Timeout(read, connect=min(timeout.connect or seconds, seconds))


# --- reading answers ---------------------------------------------------------------------------


def parse_reply(data: JSON) -> Reply:
    """A chat completion's first choice as a :class:`Reply`; anything else is ``SourceRejected``."""
    message, finish = _first_choice(data)
    key = next((k for k in _REASONING_KEYS if isinstance(message.get(k), str)), None)
    usage = data.get("usage") if isinstance(data, dict) else None
    return Reply(
        content=_text(message.get("content")),
        reasoning=_string(message.get(key)) if key else None,
        reasoning_key=key,
        tool_calls=tuple(_tool_calls(message.get("tool_calls"))),
        finish_reason=finish,
        prompt_tokens=_count(usage, "prompt_tokens"),
        completion_tokens=_count(usage, "completion_tokens"),
    )


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _first_choice(data: JSON) -> tuple[Mapping[str, object], str | None]:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise errors.SourceRejected(
            f"the model server's answer is not a chat completion: {json.dumps(data)[:200]}"
        ) from exc
    if not isinstance(message, dict):
        raise errors.SourceRejected(
            f"the chat completion's message is not an object: {message!r:.200}"
        )
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    return message, finish if isinstance(finish, str) else None


def _text(content: JSON) -> str | None:
    """``content`` as text: a string, or the text parts of a list of content parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return json.dumps(content)


def _tool_calls(value: JSON) -> list[ToolCall]:
    calls = []
    for index, raw in enumerate(value if isinstance(value, list) else []):
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        call_id = raw.get("id") or f"call_{index}"
        calls.append(ToolCall(id=str(call_id), name=str(function.get("name")), arguments=arguments))
    return calls


def _count(usage: JSON, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


# --- a bounded session ------------------------------------------------------------------------


class _StopError(Exception):
    """The budget is spent or the model looped: the session ends here."""


class OpenAIReasoner:
    """:class:`~diagnose.domain.reasoning.Reasoner` over a :class:`ChatClient`."""

    def __init__(
        self,
        client: ChatClient,
        *,
        nonce: Callable[[], str] = lambda: secrets.token_hex(8),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._nonce = nonce
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: config.LLMSettings, *, transport: httpx.BaseTransport | None = None
    ) -> OpenAIReasoner | None:
        """The reasoner the settings describe, or None when no base URL is set (no LLM)."""
        if not settings.base_url:
            return None
        key = settings.api_key.get_secret_value() if settings.api_key else None
        sampling = Sampling(
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            max_completion_tokens=settings.max_completion_tokens,
        )
        client = ChatClient(
            settings.base_url,
            model=settings.model,
            api_key=key,
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            retry=_http.RetryPolicy(attempts=settings.retries + 1, budget_s=settings.timeout_s),
            sampling=sampling,
            transport=transport,
        )
        return cls(client)

    def close(self) -> None:
        self.client.close()

    def reason(
        self,
        digest: reasoning.Digest,
        *,
        budget: reasoning.Budget,
        toolbox: reasoning.Toolbox | None = None,
    ) -> reasoning.Reasoning:
        session = _Session(
            self.client,
            digest=digest,
            budget=budget,
            toolbox=toolbox,
            nonce=self._nonce(),
            clock=self._clock,
        )
        return session.run()


def budget_from_settings(settings: config.LLMSettings) -> reasoning.Budget:
    """The :class:`~diagnose.domain.reasoning.Budget` the ``DIAGNOSE_LLM_MAX_*`` settings give."""
    return reasoning.Budget(
        max_steps=settings.max_steps,
        max_tokens=settings.max_tokens,
        max_seconds=settings.max_seconds,
        max_prompt_tokens=settings.max_prompt_tokens,
        max_completion_tokens=settings.max_session_completion_tokens,
        digest_interleave=settings.digest_interleave,
    )


class _Session:
    """One conversation: explore with read-only tools, answer by the named tool, repair once."""

    def __init__(
        self,
        client: ChatClient,
        *,
        digest: reasoning.Digest,
        budget: reasoning.Budget,
        toolbox: reasoning.Toolbox | None,
        nonce: str,
        clock: Callable[[], float],
    ) -> None:
        room = max(1, int(budget.max_prompt_tokens * DIGEST_SHARE))
        self.whole = digest
        self.digest = reasoning.fit_digest(digest, max_tokens=room, nonce=nonce)
        self.client, self.budget = client, budget
        self.toolbox, self.nonce, self.clock = toolbox, nonce, clock
        self.deadline = clock() + budget.max_seconds
        self.usage = reasoning.Usage()
        self.seen: set[tuple[str, str]] = set()
        self.answers: list[str] = []
        names = [t.name for t in toolbox.specs()] if toolbox else []
        system = reasoning.system_prompt(nonce=nonce, with_tools=bool(toolbox), tools=names)
        self.messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": reasoning.render_digest(self.digest, nonce=nonce)},
        ]

    @property
    def citable(self) -> reasoning.Digest:
        """What an answer may cite: the whole digest (its evidence the candidates cite, even
        what fitting left out of the prompt) and the evidence the tool calls gathered."""
        return self.whole.with_evidence(self.toolbox.gathered()) if self.toolbox else self.whole

    @property
    def answer_tool(self) -> reasoning.ToolSpec:
        return reasoning.answer_tool(self.citable)

    def run(self) -> reasoning.Reasoning:
        try:
            return self._explore() if self.toolbox else self._answer(repairs=1, earlier=())
        except _StopError as stop:
            return self._outcome(reasoning.ReasoningStatus.STOPPED, reasons=(str(stop),))
        except errors.SourceError as exc:
            return self._outcome(reasoning.ReasoningStatus.UNAVAILABLE, reasons=(str(exc),))

    def _explore(self) -> reasoning.Reasoning:
        assert self.toolbox is not None
        while self.usage.requests < self.budget.max_steps - 2 and self._room_to_explore():
            tools = [*self.toolbox.specs(), self.answer_tool]
            reply = self._ask(tools=tools, tool_choice="auto")
            answer = reply.call_named(reasoning.ANSWER_TOOL)
            if answer is not None or not reply.tool_calls:
                text = answer.arguments if answer else reply.content
                return self._judge(reply, text, repairs=1, earlier=())
            self._run_tools(reply)
        return self._answer(repairs=1, earlier=())

    def _answer(self, *, repairs: int, earlier: tuple[str, ...]) -> reasoning.Reasoning:
        choice: JSON = {"type": "function", "function": {"name": reasoning.ANSWER_TOOL}}
        reply = self._ask(tools=[self.answer_tool], tool_choice=choice)
        call = reply.call_named(reasoning.ANSWER_TOOL)
        return self._judge(
            reply, call.arguments if call else reply.content, repairs=repairs, earlier=earlier
        )

    def _judge(
        self, reply: Reply, text: str | None, *, repairs: int, earlier: tuple[str, ...]
    ) -> reasoning.Reasoning:
        self.answers.append((text or "")[:_MAX_ANSWER_CHARS])
        checked = answers.validate_answer(text, digest=self.citable, nonce=self.nonce)
        if checked.accepted:  # what the first answer was refused for stays on the record
            return self._outcome(
                reasoning.ReasoningStatus.ACCEPTED, claims=checked.claims, reasons=earlier
            )
        label = "after repair: " if earlier else ""
        found = checked.problems
        if reply.finish_reason == "length":
            found = (*found, "the answer was cut off at the max_tokens limit")
        problems = (*earlier, *(label + p for p in found))
        if repairs == 0 or self.usage.requests >= self.budget.max_steps:
            return self._outcome(reasoning.ReasoningStatus.REJECTED, reasons=problems)
        self._append_repair(reply, checked.problems)
        try:
            return self._answer(repairs=repairs - 1, earlier=problems)
        except (_StopError, errors.SourceError) as exc:
            reasons = (*problems, f"the repair was not asked: {exc}")
            return self._outcome(reasoning.ReasoningStatus.REJECTED, reasons=reasons)

    def _ask(self, *, tools: Sequence[reasoning.ToolSpec], tool_choice: JSON) -> Reply:
        remaining_s, remaining_tokens = self._remaining(tools)
        began = self.clock()
        try:
            reply = self.client.complete(
                self.messages,
                tools=tools,
                tool_choice=tool_choice,
                max_tokens=remaining_tokens,
                timeout_s=remaining_s,
            )
        except errors.SourceError:
            self.usage = self.usage.fail(seconds=self.clock() - began)
            raise
        self.usage = self.usage.add(
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            seconds=self.clock() - began,
        )
        return reply

    def _prompt_estimate(self, tools: Sequence[reasoning.ToolSpec]) -> int:
        """Tokens the next request's prompt is likely to cost (messages and tool schemas)."""
        text = json.dumps(self.messages) + json.dumps([t.to_openai() for t in tools])
        return reasoning.estimate_tokens(text)

    def _room_to_explore(self) -> bool:
        """Another tool turn fits only if the answer and its repair still fit after it (each
        re-sends at least as much as this turn does)."""
        assert self.toolbox is not None
        tools = [*self.toolbox.specs(), self.answer_tool]
        needed = 3 * self._prompt_estimate(tools)
        return self.usage.prompt_tokens + needed <= self.budget.max_prompt_tokens

    def _remaining(self, tools: Sequence[reasoning.ToolSpec]) -> tuple[float, int]:
        budget = self.budget
        if self.usage.requests >= budget.max_steps:
            raise _StopError(f"step budget spent ({budget.max_steps} requests)")
        tokens = min(
            budget.max_tokens - self.usage.total,
            budget.max_completion_tokens - self.usage.completion_tokens,
        )
        if tokens <= 0:
            raise _StopError(
                f"token budget spent ({self.usage.prompt_tokens} prompt and "
                f"{self.usage.completion_tokens} completion tokens)"
            )
        prompt = self.usage.prompt_tokens + self._prompt_estimate(tools)
        if prompt > budget.max_prompt_tokens:
            raise _StopError(
                f"prompt token budget: about {prompt} prompt tokens would exceed "
                f"{budget.max_prompt_tokens}"
            )
        seconds = self.deadline - self.clock()
        if seconds <= 0:
            raise _StopError(f"time budget spent ({budget.max_seconds:g} s)")
        return seconds, tokens

    def _run_tools(self, reply: Reply) -> None:
        assert self.toolbox is not None
        self.messages.append(reply.as_message())
        for call in reply.tool_calls:
            key = (call.name, reasoning.canonical_arguments(call.arguments))
            if key in self.seen:
                raise _StopError(f"loop: the model asked for {call.name}({key[1]:.200}) twice")
            self.seen.add(key)
            self.messages.append(self._tool_result(call))

    def _tool_result(self, call: ToolCall) -> Message:
        assert self.toolbox is not None
        arguments = reasoning.parse_arguments(call.arguments)
        if arguments is None:
            text = "error: the arguments are not a JSON object"
        else:
            text = self.toolbox.call(call.name, arguments)
        fenced = reasoning.fence(text, nonce=self.nonce, label=f"{call.name} result")
        return {"role": "tool", "tool_call_id": call.id, "content": fenced}

    def _append_repair(self, reply: Reply, problems: Sequence[str]) -> None:
        self.messages.append(reply.as_message())
        prompt = reasoning.repair_prompt(problems)
        if not reply.tool_calls:
            self.messages.append({"role": "user", "content": prompt})
            return
        for call in reply.tool_calls:
            text = prompt if call.name == reasoning.ANSWER_TOOL else _NOT_RUN
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": text})

    def _outcome(
        self,
        status: reasoning.ReasoningStatus,
        *,
        claims: tuple[reasoning.Claim, ...] = (),
        reasons: tuple[str, ...] = (),
    ) -> reasoning.Reasoning:
        return reasoning.Reasoning(
            status=status,
            claims=claims,
            reasons=reasons,
            usage=self.usage,
            model=self.client.model,
            answers=tuple(self.answers),
        )
