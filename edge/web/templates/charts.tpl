% rebase('layout.tpl', title=title)
<form method="get" action="/charts" class="filters">
  <label>Period <select name="days">
    % for n, label in periods.items():
    <option value="{{n}}" {{'selected' if n == days else ''}}>{{label}}</option>
    % end
  </select></label>
  <label>What if the threshold were <input type="number" name="threshold" step="0.01" min="-1" max="1" value="{{'%.2f' % what_if}}"></label>
  <button type="submit">Show</button>
</form>
<p class="muted">{{page.attempts}} attempt{{'' if page.attempts == 1 else 's'}} in the period. Threshold
  {{'%.3f' % policy.threshold}}, margin {{'%.2f' % policy.margin}}
  (<a href="/settings">settings</a>).</p>
<section class="card chart-card">
  <h2>Attempts per hour, last 24 hours</h2>
  {{!page.hourly}}
</section>
<section class="card chart-card">
  <h2>Attempts per day</h2>
  {{!page.daily}}
</section>
<section class="card chart-card">
  <h2>Similarity of grants and refusals, {{periods[days]}}</h2>
  {{!page.histogram}}
  <p class="muted">Grants above the line, refusals below. The solid line is the threshold; the dashed lines are
    one margin either side of it: scores between them are narrow passes and near misses.</p>
</section>
<section class="card chart-card">
  <h2>What if</h2>
  % w = page.what_if
  <p class="what-if">At threshold <strong>{{'%.2f' % w.threshold}}</strong> instead of {{'%.3f' % w.current}},
    <strong class="changed">{{w.changed}}</strong> of the last {{w.attempts}} attempts would change outcome:
    {{w.grants_lost}} grant{{'' if w.grants_lost == 1 else 's'}} refused,
    {{w.refusals_passing}} refusal{{'' if w.refusals_passing == 1 else 's'}} let in
    ({{w.strangers}} of them unknown face{{'' if w.strangers == 1 else 's'}}).</p>
  {{!page.what_if_chart}}
  <p class="muted">Counted from each attempt's best similarity; the votes over several frames and the margin are
    left aside, so the door itself would be a little stricter.</p>
</section>
<section class="card">
  <h2>Per person, {{periods[days]}}</h2>
  % if not page.users:
  <p class="muted">No attempts by enrolled people in this period.</p>
  % else:
  <div class="table-wrap flat">
  <table class="per-user">
    <thead><tr><th>User</th><th>Grants</th><th>Refused</th><th>Grant rate</th><th>Median time to unlock</th></tr></thead>
    <tbody>
    % for s in page.users:
    <tr><td class="username">{{s.user}}</td><td>{{s.grants}}</td><td>{{s.refusals}}</td>
      <td><meter min="0" max="1" low="0.7" high="0.9" optimum="1" value="{{'%.3f' % s.grant_rate}}"></meter>
        {{'%.0f' % (100 * s.grant_rate)}} %</td>
      <td>{{'%.1f s' % s.median_seconds if s.median_seconds is not None else '—'}}</td></tr>
    % end
    </tbody>
  </table>
  </div>
  % end
</section>
