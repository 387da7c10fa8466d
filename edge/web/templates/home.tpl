% rebase('layout.tpl', title=title)
% if user.status == 'pending':
<p class="note">Your account is waiting for approval by an administrator. Until then you cannot enrol or open the door.</p>
% elif user.status != 'active':
<p class="note">Your account is disabled. Ask an administrator if you think this is a mistake.</p>
% end
% if user.status == 'active':
<section class="grid">
  <div class="card">
    <h2>Live view</h2>
    % if live:
    <img class="live" src="/live.mjpg" alt="Live view of the door camera" width="480" height="360">
    <p class="muted">A few pictures a second, with the face the door is judging and its best match.</p>
    % else:
    <div class="no-camera" role="img" aria-label="{{no_live}}"><span>{{no_live}}</span></div>
    % end
  </div>
  <div class="card">
    <h2>Door service</h2>
    % if status is None:
    <p class="muted">The door service is not running (this page is served without a daemon).</p>
    % else:
    <dl class="status">
      % for key, value in status.items():
      <dt>{{str(key).replace('_', ' ')}}</dt><dd>{{value}}</dd>
      % end
    </dl>
    % end
  </div>
</section>
% if health:
<section class="card">
  <h2>Door health, last 24 hours</h2>
  <div class="health">
    % for card in health:
    <div class="spark-card"><div class="spark-name">{{card.name}}</div>{{!card.chart}}
      <div class="muted">{{card.now}}{{'; ' + card.peak if card.peak else ''}}</div></div>
    % end
  </div>
</section>
% end
<section class="card">
  <h2>Latest decisions</h2>
  % if not events:
  <p class="muted">Nothing yet.</p>
  % else:
  <div class="table-wrap flat">
  <table class="recent">
    <thead><tr>
      % if web.is_admin():
      <th>Face</th>
      % end
      <th>Time</th><th>Result</th><th>User</th><th>Similarity</th></tr></thead>
    <tbody>
    % for e in events:
      <tr class="{{e.get('kind')}}">
        % if web.is_admin():
        <td class="face">
          % if e.get('photo'):
          <img class="thumb" src="/faces/{{e['photo']}}.jpg" alt="Face at the door" width="40" height="40">
          % end
        </td>
        % end
        <td>{{format_time(e.get('time'))}}</td><td class="result">{{e.get('kind')}}</td>
          <td>{{e.get('user') or '—'}}</td>
          <td>{{'%.3f' % e['similarity'] if isinstance(e.get('similarity'), (int, float)) else ''}}</td></tr>
    % end
    </tbody>
  </table>
  </div>
  % end
</section>
% end
