% rebase('layout.tpl', title=title)
<form method="get" action="/log" class="filters">
  % if users:
  <label>User <select name="user"><option value="">all</option>
    % for name in users:
    <option value="{{name}}" {{'selected' if name == filters['user'] else ''}}>{{name}}</option>
    % end
  </select></label>
  % end
  <label>Result <select name="result"><option value="">all</option>
    % for kind in kinds:
    <option value="{{kind}}" {{'selected' if kind == filters['result'] else ''}}>{{kind}}</option>
    % end
  </select></label>
  <label>From <input type="date" name="from" value="{{filters['from']}}"></label>
  <label>To <input type="date" name="to" value="{{filters['to']}}"></label>
  <button type="submit">Filter</button>
  <a class="button" href="/log.csv{{'?' + query if query else ''}}">Export CSV</a>
</form>
<p class="muted">{{total}} event{{'' if total == 1 else 's'}}, page {{page}} of {{pages}}.</p>
<div class="table-wrap">
<table class="log{{' with-faces' if faces else ''}}">
  <thead><tr>
    % if faces:
    <th>Face</th>
    % end
    <th>Time</th><th>Event</th><th>User</th><th>Similarity</th><th class="source">Source</th>
  </tr></thead>
  <tbody>
  % for e in events:
  <tr class="{{e.get('kind')}}">
      % if faces:
      <td class="face">
        % if e.get('photo') and e.get('kind') != 'enrol':
        <img class="thumb" src="/faces/{{e['photo']}}.jpg" alt="Face at the door" width="56" height="56" loading="lazy">
          % if e.get('kind') in ('unknown', 'lockout') and people:
        <form method="post" action="/faces/enrol" class="enrol-as">
          <input type="hidden" name="csrf_token" value="{{csrf_token}}">
          <input type="hidden" name="photo" value="{{e['photo']}}">
          <input type="hidden" name="back" value="{{back}}">
          <select name="user" aria-label="Enrol this face as">
            % for uid, name in people:
            <option value="{{uid}}">{{name}}</option>
            % end
          </select>
          <button type="submit" class="small">Enrol as</button>
        </form>
          % end
        % end
      </td>
      % end
      <td>{{format_time(e.get('time'))}}</td><td class="result">{{e.get('kind')}}</td>
      <td>{{e.get('user') or ''}}</td><td>{{format_similarity(e.get('similarity'))}}</td>
      <td class="source">{{e.get('source') or ''}}</td>
  </tr>
  % end
  </tbody>
</table>
</div>
<nav class="pager">
  % if page > 1:
  <a href="/log?{{query + '&' if query else ''}}page={{page - 1}}">← Newer</a>
  % end
  % if page < pages:
  <a href="/log?{{query + '&' if query else ''}}page={{page + 1}}">Older →</a>
  % end
</nav>
