% rebase('layout.tpl', title=title)
% if errors.get('form'):
<p class="error">{{errors['form']}}</p>
% end
% if door:
<p class="card door-level">The door's threshold now: <strong>{{'%.3f' % door['threshold']}}</strong> ({{door['source']}}).
% if door['granted'] is not None:
  Expected share of residents' single looks that reach it: <strong>{{'%.0f%%' % (100 * door['granted'])}}</strong>
  (the door judges several frames together, so more of their visits are let in at the first try).
% end
</p>
% end
<form method="post" action="/settings" class="card">
  <input type="hidden" name="csrf_token" value="{{csrf_token}}">
  % for row in fields:
  % key = row.name
  <label>{{row.label}}
    <input name="{{key}}" value="{{values.get(key, '')}}" inputmode="decimal"
           {{!'aria-invalid="true"' if errors.get(key) else ''}}>
  </label>
  % if errors.get(key):
  <span class="field-error">{{errors[key]}}</span>
  % end
  <span class="help">{{row.help}}{{' (model per-comparison threshold %.3f)' % model_threshold if key == 'threshold' and model_threshold is not None else ''}}</span>
  % end
  % if weaker:
  <div class="error">
    <p>These settings make the door easier to open:</p>
    <ul>
    % for reason in weaker:
      <li>{{reason}}</li>
    % end
    </ul>
    <label><input type="checkbox" name="confirm_weaker" value="yes"> I understand; save them anyway (this is
      recorded in the access log)</label>
  </div>
  % end
  <button type="submit">Save settings</button>
</form>
<section class="card" id="mqtt">
  <h2>Home Assistant (MQTT)</h2>
  <p>{{mqtt_state}}</p>
  <p class="help">Broker, topics and remote unlock are set in the [mqtt] section of the configuration file;
    <code>edge-face doctor</code> checks the broker and <code>edge-face mqtt test</code> publishes a test event.</p>
</section>
% if get('liveness'):
<section class="card">
  <h2>Liveness check</h2>
  <p class="liveness-mode"><strong>{{liveness.mode}}</strong>, window {{'%g' % liveness.window_seconds}} s
  (set in the configuration file, <code>[liveness] mode</code>; the service reloads it on SIGHUP).</p>
  <p class="liveness-illuminator">Illuminator: {{'GPIO%d, pulsed at random while a face is in view' % liveness.illuminator_pin if liveness.illuminator_pin is not None else 'none fitted'}}
  (<code>[liveness] illuminator_pin</code>; a live face's shading follows its pulses, a print's is flat, a screen barely follows).</p>
  <p class="help">off: a photograph or a screen showing a resident opens the door. passive: the face must blink,
  move its mouth or eyes or turn, and must not be framed by a phone or paper outline. strict: the person must also blink
  twice when the LEDs flash (stops replayed video, except by rare chance). No single camera stops a good 3-D mask.</p>
</section>
% end
