% rebase('layout.tpl', title=title)
% if user.status == 'pending':
<p class="note">Your account is waiting for approval by an administrator. Until then you cannot enrol or open the door.</p>
% elif user.status != 'active':
<p class="note">Your account is disabled. Ask an administrator if you think this is a mistake.</p>
% end
% if user.status == 'active':
<section class="grid">
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
  % if user.status == 'active':
  <div class="card">
    <h2>Camera</h2>
    % if status is None:
    <p class="muted">No camera picture without the door service.</p>
    % else:
    <img class="snapshot" src="/snapshot.jpg" alt="Current camera picture">
    % end
  </div>
  % end
</section>
<section class="card">
  <h2>Latest grants and denials</h2>
  % if not events:
  <p class="muted">Nothing yet.</p>
  % else:
  <table>
    <thead><tr><th>Time</th><th>Result</th><th>User</th><th>Similarity</th></tr></thead>
    <tbody>
    % for e in events:
      <tr class="{{e.get('kind')}}"><td>{{format_time(e.get('time'))}}</td><td>{{e.get('kind')}}</td>
          <td>{{e.get('user') or '—'}}</td>
          <td>{{'%.3f' % e['similarity'] if isinstance(e.get('similarity'), (int, float)) else ''}}</td></tr>
    % end
    </tbody>
  </table>
  % end
</section>
% end
