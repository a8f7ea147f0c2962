/**
 * The "Set up protection" panel of the popup and the options page: a button that starts the
 * server's setup job (download the model, fetch HarMeme, embed, train, calibrate, check), its
 * progress while it runs (stage, bar, amount, time left, Cancel), and at the end what the user
 * now has, per category. All HTTP goes through the worker (SETUP_* messages); the page asks for
 * the progress every SETUP_POLL_MS while the job runs, and not at all otherwise.
 */
import { SETUP_STATE } from './api.js';
import { MSG } from './messages.js';
import {
  SETUP_POLL_MS, describeAmount, describePlan, describeStep, describeTimeLeft, isSetupRunning, progressFraction, stageName,
} from './setup.js';

const INTRO = 'Your server checks pictures zero-shot: its scores only rank pictures. Set up protection downloads '
  + 'the model and the public HarMeme memes, and trains a detector on this computer, inside the server.';

/** An element with `props` (id, className, textContent, hidden, type...) and `children`. */
function h(tag, props = {}, children = []) {
  const el = document.createElement(tag);
  Object.assign(el, props);
  el.append(...children);
  return el;
}

export class SetupPanel {
  /**
   * @param {HTMLElement} root the (empty) element the panel is drawn in
   * @param {{send: (message) => Promise<object>, onFinished?: (setup) => void}} deps `send` reaches
   *   the worker; `onFinished` runs once when a job this page watched ends (done, failed, cancelled)
   */
  constructor(root, { send, onFinished = () => {} }) {
    this.root = root;
    this.send = send;
    this.onFinished = onFinished;
    this.setup = null;
    this.timer = 0;
    this.build();
    // A hidden page (a background tab) stops asking; shown again, it catches up.
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && isSetupRunning(this.setup)) this.refresh();
    });
  }

  build() {
    this.els = {
      intro: h('p', { id: 'setup-intro', className: 'muted', textContent: INTRO }),
      start: h('button', { id: 'setup-start', type: 'button', textContent: 'Set up protection' }),
      plan: h('p', { id: 'setup-plan', className: 'muted', hidden: true }),
      stage: h('strong', { id: 'setup-stage' }),
      step: h('span', { id: 'setup-step', className: 'muted' }),
      bar: h('progress', { id: 'setup-bar', max: 1 }),
      stages: h('ol', { id: 'setup-stages', className: 'muted' }),
      amount: h('span', { id: 'setup-amount' }),
      eta: h('span', { id: 'setup-eta' }),
      cancel: h('button', { id: 'setup-cancel', type: 'button', className: 'secondary', textContent: 'Cancel' }),
      error: h('p', { id: 'setup-error', className: 'result', hidden: true }),
      summary: h('ul', { id: 'setup-summary', hidden: true }),
    };
    const e = this.els;
    e.bar.setAttribute('aria-labelledby', 'setup-stage');
    e.error.dataset.ok = 'false';
    e.error.setAttribute('role', 'alert');
    e.progress = h('div', { id: 'setup-progress', hidden: true }, [
      h('div', {}, [e.stage, ' ', e.step]),
      e.bar,
      h('div', { className: 'muted' }, [e.amount, e.eta]),
      e.stages,
      e.cancel,
    ]);
    e.progress.setAttribute('aria-live', 'polite');
    this.root.replaceChildren(h('h2', { textContent: 'Protection' }), e.intro, e.plan, e.progress, e.summary, e.error, e.start);
    this.root.dataset.setupState = 'unknown';
    e.start.addEventListener('click', () => this.act(MSG.SETUP_START));
    e.cancel.addEventListener('click', () => this.act(MSG.SETUP_CANCEL));
  }

  /** Ask the worker for the job's progress (and keep asking while it runs). */
  async refresh() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.take(await this.sendSafely({ type: MSG.SETUP_STATUS }));
  }

  /** Start (or retry) or cancel the job. */
  async act(type) {
    this.els.start.disabled = true;
    this.els.cancel.disabled = true;
    clearTimeout(this.timer);
    this.timer = 0;
    this.take(await this.sendSafely({ type }));
  }

  async sendSafely(message) {
    try {
      return (await this.send(message)) ?? { error: { message: 'The extension did not answer; try again.' } };
    } catch (e) {
      return { error: { message: String(e?.message ?? e) } };
    }
  }

  /** Show a worker's answer; poll again in SETUP_POLL_MS while the job runs. */
  take(reply) {
    const before = this.setup?.state;
    if (reply?.setup) {
      this.setup = reply.setup;
      this.render(reply.setup);
      if (before === SETUP_STATE.RUNNING && !isSetupRunning(reply.setup)) this.onFinished(reply.setup);
    } else {
      this.renderError(reply?.error?.message ?? String(reply?.error ?? 'no answer'));
    }
    // While the job runs, a failed ask (the server restarting mid-job) is retried too.
    if (isSetupRunning(this.setup) && !document.hidden) {
      this.timer = setTimeout(() => this.refresh(), SETUP_POLL_MS);
    }
  }

  /** Stop polling (the page is hidden or closing); `refresh()` starts again. */
  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }

  render(setup) {
    const e = this.els;
    const running = isSetupRunning(setup);
    this.root.dataset.setupState = setup.state;
    e.intro.hidden = running || setup.state === SETUP_STATE.DONE;
    const plan = describePlan(setup.plan);
    e.plan.hidden = !plan || setup.state === SETUP_STATE.DONE;
    e.plan.textContent = plan;
    e.progress.hidden = !running;
    if (running) {
      e.stage.textContent = setup.stage ? stageName(setup.stage) : 'Preparing';
      e.stage.dataset.stage = setup.stage ?? '';
      e.step.textContent = describeStep(setup);
      const fraction = progressFraction(setup);
      if (fraction === null) e.bar.removeAttribute('value'); // indeterminate
      else e.bar.value = fraction;
      e.amount.textContent = setup.total > 0 || setup.done > 0 ? describeAmount(setup) : '';
      e.eta.textContent = describeTimeLeft(setup.etaS) || 'estimating the time left…';
      e.cancel.disabled = false;
      this.renderStages(setup);
    }
    const categories = setup.state === SETUP_STATE.DONE ? setup.summary?.categories ?? [] : [];
    e.summary.hidden = categories.length === 0;
    e.summary.replaceChildren(...categories.map((c) => {
      const li = h('li', { textContent: c.text || `${c.name}: ${c.status}` });
      li.dataset.category = c.id;
      li.dataset.status = c.status;
      // The server's text may already say how to improve it ("…, uncalibrated (needs MAMI: …)").
      if (c.howToImprove && !li.textContent.includes(c.howToImprove)) li.append(h('div', { className: 'muted', textContent: c.howToImprove }));
      return li;
    }));
    const failed = setup.state === SETUP_STATE.FAILED;
    e.error.hidden = !(failed || setup.state === SETUP_STATE.CANCELLED);
    e.error.dataset.ok = String(!failed);
    e.error.textContent = failed ? `Setup failed: ${setup.error?.message ?? 'no reason given'}` : 'Setup cancelled.';
    e.start.hidden = running;
    e.start.disabled = false;
    e.start.textContent = failed ? 'Retry' : setup.state === SETUP_STATE.DONE ? 'Set up again' : 'Set up protection';
  }

  /** Every stage in order, each done, current or still to come (a fast stage may start and end between two asks). */
  renderStages(setup) {
    const current = setup.stages.indexOf(setup.stage);
    this.els.stages.replaceChildren(...setup.stages.map((stage, i) => {
      const status = i < current ? 'done' : i === current ? 'current' : 'todo';
      const li = h('li', { textContent: `${stageName(stage)}${status === 'done' ? ' ✓' : ''}` });
      li.dataset.stage = stage;
      li.dataset.status = status;
      if (status === 'current') li.setAttribute('aria-current', 'step');
      return li;
    }));
  }

  renderError(message) {
    const e = this.els;
    e.error.hidden = false;
    e.error.dataset.ok = 'false';
    e.error.textContent = message;
    e.start.disabled = false;
    e.cancel.disabled = false;
    e.start.hidden = isSetupRunning(this.setup);
  }
}
